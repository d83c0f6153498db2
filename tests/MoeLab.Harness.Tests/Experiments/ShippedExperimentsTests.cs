using MoeLab.Harness.Experiments;
using MoeLab.Harness.Tests.Runs;

namespace MoeLab.Harness.Tests.Experiments;

public sealed class ShippedExperimentsTests
{
    /// <summary>Every experiment in experiments/ validates and expands (the trace-replay ones need the shared trace).</summary>
    [Fact]
    public void EveryShippedExperimentValidates()
    {
        string dir = Path.Combine(KillResumeTests.RepoRoot(), "experiments");
        var files = Directory.GetFiles(dir, "*.yaml");
        Assert.Contains(files, f => Path.GetFileName(f) == "quickstart.yaml");
        foreach (string f in files)
        {
            // Trace experiments read the shared trace beside the repository (../shared/traces); skip them where it is absent.
            if (File.ReadAllText(f).Contains("shared/traces/", StringComparison.Ordinal) && !Directory.Exists(Path.Combine(dir, "../../shared/traces"))) continue;
            var e = ExperimentReader.Load(f);
            Assert.Equal(Path.GetFileNameWithoutExtension(f), e.Name);
            Assert.NotEmpty(Matrix.Expand(e, ModelSizes.TotalExpertBytes(e.Model)));
        }
    }
}
