using MoeLab.DeviceAgent.Api;
using MoeLab.Harness.Runs;
using MoeLab.Harness.Simulation;
using MoeLab.Harness.Traces;

namespace MoeLab.Harness.Tests.Simulation;

public sealed class SimTargetTests : IDisposable
{
    private readonly string _trace = Path.Combine(Path.GetTempPath(), $"moelab-simtarget-{Environment.ProcessId}-{Guid.NewGuid():N}.mltrace");

    private static readonly DeviceProfile Device = DeviceProfile.Parse("""
        name: test-device
        memory: { total_gib: 1, available_to_model_gib: 0.5 }
        storage:
          reads:
            - { block_kib: 1024, queue_depth: 8, read_mb_per_s: 1000, latency_us: 100 }
        compute: { expert_gb_per_s: 10, dense_gb_per_s: 10 }
        """, "test-device.yaml");

    public SimTargetTests() =>
        MoelabTraceFormat.Write(SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 4, Experts = 32, ExpertsPerToken = 4, Tokens = 40, Model = "small-qwen3moe" }), _trace);

    public void Dispose() => File.Delete(_trace);

    private RunCell Cell(string precision = "native", long? budget = 4_000_000, string prefetch = "none") => new()
    {
        CellId = "c1", Experiment = "t", Model = "small-qwen3moe", Prompts = [], GenerateTokens = 30, WarmupTokens = 5, Repetitions = 2,
        BudgetBytes = budget, Cache = "lru", Prefetch = prefetch, Precision = precision, Trace = _trace, TraceFormat = "moelab",
    };

    [Fact]
    public void ReportsPostWarmupTokensWhoseSumsAreTheTotals()
    {
        var target = new SimTarget(Device);
        Assert.Equal("sim:test-device", target.Name);
        Assert.Null(target.Preflight(Cell()));
        var streamed = new List<TokenEvent>();
        var r = target.Run(Cell(), streamed.Add, CancellationToken.None);
        Assert.Equal("simulator:test-device", r.Source);
        Assert.Equal(60, r.Tokens); // 2 repetitions × 30 tokens
        Assert.Equal(streamed, r.TokenEvents);
        Assert.Equal(r.TokenEvents.Sum(e => (long)e.Hits), r.ExpertHits);
        Assert.Equal(r.TokenEvents.Sum(e => e.BytesRead), r.BytesRead);
        Assert.Equal(r.TokenEvents.Sum(e => e.WallMs) / 1e3, r.Seconds, 9);
        Assert.Equal(60 * 4 * 4, r.ExpertHits + r.ExpertMisses);

        // The same numbers as a direct replay of tokens 5..34.
        var setup = new SimulationSetup
        {
            Trace = TraceFiles.Load(_trace), Preset = SimulationSetup.FindPreset("small-qwen3moe"), Profile = Device,
            Unit = MoeLab.Strategies.CacheUnit.Bytes, MaxTokens = 35, RecordTokens = true,
        };
        var direct = Simulator.Run(setup.Options(), 4_000_000).PerToken!;
        Assert.Equal(direct.Skip(5).Sum(t => (long)t.Misses) * 2, r.ExpertMisses);
    }

    [Fact]
    public void PerLayerCountsAreDisjointAndSumToThePostWarmupTotals()
    {
        var r = new SimTarget(Device).Run(Cell(prefetch: "oracle"), _ => { }, CancellationToken.None);
        Assert.True(r.PrefetchHits > 0, "an oracle prefetcher must produce prefetch hits");
        Assert.Equal(Enumerable.Range(0, 4), r.ExpertsByLayer.Select(l => l.Layer));
        Assert.Equal(r.ExpertHits, r.ExpertsByLayer.Sum(l => l.Hits));
        Assert.Equal(r.ExpertMisses, r.ExpertsByLayer.Sum(l => l.Misses));
        Assert.Equal(r.PrefetchHits, r.ExpertsByLayer.Sum(l => l.PrefetchHits));

        // Disjoint outcomes: every demanded expert of the 2 × 30 measured tokens is one of the three, in every layer.
        Assert.All(r.ExpertsByLayer, l => Assert.Equal(60 * 4, l.Hits + l.Misses + l.PrefetchHits));
        Assert.Equal(60 * 4 * 4, r.TokenEvents.Sum(e => (long)e.Hits + e.Misses + e.PrefetchHits));

        // Each layer's figures equal a direct replay's over tokens 5..34 (its hits include prefetch hits).
        var setup = new SimulationSetup
        {
            Trace = TraceFiles.Load(_trace), Preset = SimulationSetup.FindPreset("small-qwen3moe"), Profile = Device,
            Unit = MoeLab.Strategies.CacheUnit.Bytes, MaxTokens = 35, Prefetch = MoeLab.Strategies.StrategySpec.Of("oracle"),
        };
        var direct = Simulator.Run(setup.Options() with { WarmupTokens = 5 }, 4_000_000);
        for (int l = 0; l < 4; l++)
        {
            Assert.Equal(2 * direct.LayerMisses[l], r.ExpertsByLayer[l].Misses);
            Assert.Equal(2 * (direct.LayerHits[l] - direct.LayerPrefetchHits[l]), r.ExpertsByLayer[l].Hits);
        }
    }

    [Fact]
    public void PreflightRefusesWhatATraceCannotReplay()
    {
        var target = new SimTarget(Device);
        Assert.Contains("precision", target.Preflight(Cell(precision: "uniform-bits")));
        Assert.Contains("no prefetch strategy", target.Preflight(Cell(prefetch: "nope")) ?? "", StringComparison.OrdinalIgnoreCase);
        Assert.Contains("trace", target.Preflight(Cell() with { Trace = null }));
    }

    [Fact]
    public void NoBudgetMeansEveryExpertResidentAfterFirstUse()
    {
        var r = new SimTarget(Device).Run(Cell(budget: null) with { Repetitions = 1 }, _ => { }, CancellationToken.None);
        var trace = TraceFiles.Load(_trace);
        int seenBeforeWarmupEnd = trace.RequestSequence().Take(5 * 16).Distinct().Count();
        int seenByEnd = trace.RequestSequence().Take(35 * 16).Distinct().Count();
        Assert.Equal(seenByEnd - seenBeforeWarmupEnd, r.ExpertMisses); // compulsory misses only
    }
}
