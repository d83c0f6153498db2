using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Gguf;
using MoeLab.Harness.Simulation;

namespace MoeLab.Harness.Tests.Simulation;

/// <summary>
/// Timed tests run alone: xunit runs a collection with parallelization disabled after every parallel one has finished,
/// so no other test of this assembly competes for the CPUs the engine and the probe are timed on.
/// </summary>
[CollectionDefinition(nameof(TimedCollection), DisableParallelization = true)]
public sealed class TimedCollection;

/// <summary>The calibration figure: the simulator's tokens/s against the engine's, on this host.</summary>
[Collection(nameof(TimedCollection))]
public sealed class CalibrationAccuracyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-calacc-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// The calibration figure at small scale: predicted tokens/s within ±15% of the engine's on this host.
    /// Timed, so Slow (never in the default suite); rerun <c>moelab calibrate</c> first on a new machine.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void PredictedTokensPerSecondIsWithinFifteenPercentOfTheEngine()
    {
        string model = CalibrationCheckTests.Synthesize(_dir, "qwen3-30b-a3b", layers: 2, quant: GgmlType.Q4_K);
        var r = CalibrationCheck.Run(new CalibrationCheckOptions
        {
            ModelPath = model,
            Settings = new EngineSettings { BudgetBytes = CalibrationCheckTests.ExpertBytes(model) / 4, IoMode = "direct", Cache = "lru" },
            Prompts = ["The expert cache keeps the hot experts in RAM while the rest stream from the SSD"],
            Tokens = 24,
            Profile = CalibrationCheckTests.HostProfile(),
        });
        Assert.True(r.CountsMatch);
        Assert.True(Math.Abs(r.TokensPerSecondError) <= 0.15, CalibrationCheck.Table(r));
    }
}
