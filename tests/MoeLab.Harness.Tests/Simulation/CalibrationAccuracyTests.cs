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

/// <summary>The issue's calibration figure: the simulator's tokens/s against the engine's, on this host.</summary>
[Collection(nameof(TimedCollection))]
public sealed class CalibrationAccuracyTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-calacc-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// The issue's calibration figure at small scale: predicted tokens/s within ±15% of the engine's on this host, as
    /// the median of three checks of 48 tokens (each with its own probes). One check of 24 tokens on this 2-layer slice
    /// spread about ±10% from run to run on a quiet machine (2026-12-06) and failed 3 times in 11, so a single run
    /// tested the noise more than the model. Timed, so Slow (never in the default suite); rerun <c>moelab calibrate</c>
    /// first on a new machine.
    /// </summary>
    [Fact]
    [Trait("Category", "Slow")]
    public void PredictedTokensPerSecondIsWithinFifteenPercentOfTheEngine()
    {
        string model = CalibrationCheckTests.Synthesize(_dir, "qwen3-30b-a3b", layers: 2, quant: GgmlType.Q4_K);
        var runs = new List<CalibrationCheckResult>();
        for (int i = 0; i < 3; i++)
        {
            runs.Add(CalibrationCheck.Run(new CalibrationCheckOptions
            {
                ModelPath = model,
                Settings = new EngineSettings { BudgetBytes = CalibrationCheckTests.ExpertBytes(model) / 4, IoMode = "direct", Cache = "lru" },
                Prompts = ["The expert cache keeps the hot experts in RAM while the rest stream from the SSD"],
                Tokens = 48,
                Profile = CalibrationCheckTests.HostProfile(),
            }));
        }

        output.WriteLine($"tokens/s errors: {string.Join(", ", runs.Select(r => r.TokensPerSecondError.ToString("P1", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.All(runs, r => Assert.True(r.CountsMatch));
        double median = runs.Select(r => r.TokensPerSecondError).Order().ElementAt(1);
        Assert.True(Math.Abs(median) <= 0.15, $"median error {median:P1} of {string.Join(", ", runs.Select(r => r.TokensPerSecondError.ToString("P1", System.Globalization.CultureInfo.InvariantCulture)))}\n" + string.Join("\n", runs.Select(CalibrationCheck.Table)));
    }
}
