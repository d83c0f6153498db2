using MoeLab.DeviceAgent.Api;
using MoeLab.Harness.Runs;

namespace MoeLab.Harness.Tests.Runs;

/// <summary>
/// An experiment's <c>trace:</c> is the profile that static-hot (and the other profile-trained policies) learn from on a
/// local target: a cell records a trace, a static-hot cell given that trace streams the same greedy tokens, and a
/// static-hot cell without one fails naming what it needs.
/// </summary>
public sealed class ProfileTraceCellTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-profile-cell").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static RunCell Cell(string id, string cache, string? trace = null, bool record = false) => new()
    {
        CellId = id,
        Experiment = "profile",
        Model = "synth:tiny-qwen3moe",
        Prompts = ["Once upon a time"],
        GenerateTokens = 8,
        BudgetBytes = 40 << 10,
        IoMode = "buffered",
        Cache = cache,
        Threads = 1,
        Trace = trace,
        TraceFormat = trace is null ? null : "moelab",
        RecordTrace = record,
    };

    [Fact]
    public void StaticHotLearnsFromTheExperimentTrace()
    {
        var target = new LocalTarget(_dir);
        var events = new List<TokenEvent>();
        var recorded = target.Run(Cell("lru", "lru", record: true), events.Add, CancellationToken.None);
        string trace = Path.Combine(_dir, "profile.mltrace");
        File.WriteAllBytes(trace, Convert.FromBase64String(recorded.TraceBase64!));

        var hotEvents = new List<TokenEvent>();
        var hot = target.Run(Cell("hot", "static-hot", trace), hotEvents.Add, CancellationToken.None);
        Assert.Equal(events.Select(e => e.TokenId), hotEvents.Select(e => e.TokenId));
        Assert.True(hotEvents.Sum(e => e.Misses) > 0, "the budget does not force streaming");

        var e = Assert.ThrowsAny<Exception>(() => target.Run(Cell("no-profile", "static-hot"), _ => { }, CancellationToken.None));
        Assert.Contains("static-hot", e.Message);
        Assert.Contains("trace:", e.Message);
    }
}
