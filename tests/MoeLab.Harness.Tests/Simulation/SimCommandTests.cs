using MoeLab.Harness.Cli;
using MoeLab.Harness.Simulation;
using MoeLab.Harness.Traces;

namespace MoeLab.Harness.Tests.Simulation;

[Collection(nameof(ConsoleCollection))]
public sealed class SimCommandTests
{
    private static string RepoDevices()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string p = Path.Combine(d.FullName, "experiments", "devices");
            if (Directory.Exists(p)) return p;
        }

        throw new DirectoryNotFoundException("experiments/devices not found above the test binaries");
    }

    [Theory]
    [InlineData("iphone-17-pro")]
    [InlineData("m3-max-48gb")]
    public void ShippedProfilesLoadAndCiteASourceForEachSection(string name)
    {
        var p = DeviceProfile.Load(Path.Combine(RepoDevices(), name + ".yaml"));
        Assert.Equal(name, p.Name);
        Assert.Contains(p.Sources, s => s.Figure.StartsWith("memory.total", StringComparison.Ordinal) && !s.Estimate);
        Assert.Contains(p.Sources, s => s.Figure.StartsWith("storage", StringComparison.Ordinal));
        Assert.Contains(p.Sources, s => s.Figure.StartsWith("compute", StringComparison.Ordinal));
    }

    [Fact]
    public void ProfileErrorsNameTheFileAndField()
    {
        var e = Assert.Throws<InvalidDataException>(() => DeviceProfile.Parse("name: x\nmemory: { available_to_model_gib: 4 }\nstorage: { reads: [] }\ncompute: { expert_gb_per_s: 1, dense_gb_per_s: 1 }\n", "bad.yaml"));
        Assert.Contains("bad.yaml", e.Message);
        Assert.Contains("storage.reads", e.Message);
        var typo = Assert.Throws<InvalidDataException>(() => DeviceProfile.Parse("name: x\nmemroy: {}\n", "typo.yaml"));
        Assert.Contains("typo.yaml:2", typo.Message);
    }

    [Fact]
    public void SimCommandPrintsACurveAsJson()
    {
        string path = Path.Combine(Path.GetTempPath(), $"moelab-sim-{Environment.ProcessId}.mltrace");
        try
        {
            var trace = SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 4, Experts = 16, ExpertsPerToken = 2, Tokens = 50 });
            MoelabTraceFormat.Write(trace, path);
            var (code, output, _) = ConsoleCapture.Run("sim", "--trace", path, "--cache", "lru", "--capacity", "8,64", "--json");

            Assert.Equal(0, code);
            using var doc = System.Text.Json.JsonDocument.Parse(output);
            var results = doc.RootElement.GetProperty("results");
            Assert.Equal(2, results.GetArrayLength());
            Assert.Equal(64, results[1].GetProperty("misses").GetInt64()); // 4 × 16 keys, all fit: compulsory misses only
            Assert.Equal(Simulator.Run(new SimulationOptions { Trace = trace }, 8).Hits, results[0].GetProperty("hits").GetInt64());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void UnknownCachePolicyIsAUsageErrorNotACrash()
    {
        string path = Path.Combine(Path.GetTempPath(), $"moelab-sim-bad-{Environment.ProcessId}.mltrace");
        try
        {
            MoelabTraceFormat.Write(SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 2, Experts = 8, ExpertsPerToken = 2, Tokens = 5 }), path);
            var err = new StringWriter();
            var old = Console.Error;
            Console.SetError(err);
            try
            {
                Assert.Equal(2, CommandLine.Run(["sim", "--trace", path, "--cache", "lur", "--capacity", "4"]));
            }
            finally
            {
                Console.SetError(old);
            }

            Assert.Contains("did you mean 'lru'", err.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
