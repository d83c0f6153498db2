using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Engine.Telemetry;
using MoeLab.Strategies;

namespace MoeLab.DeviceAgent.Tests.Runs;

/// <summary>
/// Strategies that learn from a profile trace (static-hot, layered-lru, transition from a profile) run in the live
/// engine through EngineSession, not only in trace replay: given a routing trace of the model they stream under a
/// small budget and give the resident logits bit for bit; without one they are refused with the reason.
/// </summary>
public sealed class ProfiledStrategiesTests : IDisposable
{
    private static readonly int[] Tokens = [1, 17, 250, 3, 99, 42, 5, 311, 7, 200, 64, 128];

    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-profiled-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("static-hot", "none")]
    [InlineData("layered-lru", "none")]
    [InlineData("lru", "transition:source=profile")]
    public void Profiled_strategies_run_in_the_live_engine(string cache, string prefetch)
    {
        string path = Path.Combine(_dir, "tiny.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.Q8_0, Seed: 5), path);
        float[][] resident;
        RoutingTrace profile;
        using (var m = MoeModel.Load(path, new ModelOptions { Threads = 1, MaxContext = 64 }))
        {
            resident = Tokens.Select(t => m.Forward(t).ToArray()).ToArray();
            var recorder = new RoutingTraceRecorder(m.Experts.Layers, m.ExpertsPerLayer);
            using var observed = MoeModel.Load(path, new ModelOptions { Threads = 1, MaxContext = 64, Observer = recorder });
            foreach (int t in Tokens.Reverse()) observed.Forward(t); // a profile from other text than the run's
            profile = recorder.Build();
        }

        using var session = EngineSession.Open(path, new EngineSettings
        {
            BudgetBytes = 64 << 10, IoMode = "buffered", Cache = cache, Prefetch = prefetch, Threads = 1, MaxContext = 64, Profile = profile,
        });
        for (int i = 0; i < Tokens.Length; i++)
        {
            Assert.True(resident[i].AsSpan().SequenceEqual(session.Model.Forward(Tokens[i])), $"{cache}/{prefetch}: logits differ at position {i}");
        }

        Assert.True(session.Streaming!.Counters.Misses > 0, "the budget does not force streaming");
    }

    [Fact]
    public void Without_a_profile_the_policy_says_what_it_needs()
    {
        string path = Path.Combine(_dir, "tiny.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.Q8_0, Seed: 5), path);
        var e = Assert.Throws<StrategyException>(() => EngineSession.Open(path, new EngineSettings { BudgetBytes = 64 << 10, IoMode = "buffered", Cache = "static-hot", Threads = 1, MaxContext = 64 }));
        Assert.Contains("static-hot", e.Message);
        Assert.Contains("--profile-trace", e.Message);
    }
}
