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

    private const string SweptProfile = """
        name: swept
        memory: { available_to_model_gib: 4 }
        storage:
          default_block_kib: 0
          default_queue_depth: 2
          read_slowdown_under_compute: 1.5
          reads:
          - { block_kib: 128, queue_depth: 1, read_mb_per_s: 1000, latency_us: 131.1 }
          - { block_kib: 1024, queue_depth: 1, read_mb_per_s: 3000, latency_us: 349.5 }
          - { block_kib: 8192, queue_depth: 1, read_mb_per_s: 4000, latency_us: 2097.2 }
          - { block_kib: 128, queue_depth: 2, read_mb_per_s: 1500, latency_us: 174.8 }
          - { block_kib: 8192, queue_depth: 2, read_mb_per_s: 6000, latency_us: 2796.2 }
        compute: { expert_gb_per_s: 10, dense_gb_per_s: 20, resume_after_stall_us: 150 }
        """;

    [Fact]
    public void AProfileWithABlockSizeSweepRoundTripsAndReadsOneSlicePerRequest()
    {
        var p = DeviceProfile.Parse(SweptProfile, "swept.yaml");
        var again = DeviceProfile.Parse(p.ToYaml(), "again.yaml");
        Assert.Equal(0, again.Storage.DefaultBlockKib);
        Assert.Equal(
            p.Storage.Reads.Select(r => (r.BlockKib, r.QueueDepth, r.ReadMbPerS, r.LatencyUs)),
            again.Storage.Reads.Select(r => (r.BlockKib, r.QueueDepth, r.ReadMbPerS, r.LatencyUs)));
        Assert.Equal(5, again.Storage.Reads.Count);
        Assert.Equal(150, again.Compute.ResumeAfterStallUs);

        // default_block_kib 0: one read per gate/up/down slice of the simulated model, charged at that size.
        var preset = MoeLab.Engine.Model.ModelPreset.Find("qwen3.5-397b-a17b")!;
        var cost = CostModel.For(again, preset, MoeLab.Engine.Gguf.GgmlType.Q4_K, MoeLab.Engine.Gguf.GgmlType.Q4_K);
        Assert.Equal(150e-6, cost.ResumeAfterStallSeconds, 12);
        Assert.Equal(1.5, cost.PrefetchReadSlowdown);
        Assert.Equal(3, cost.ReadsPerExpert);
        Assert.Equal(CostModel.SliceBytes(preset.ExpertBytes(MoeLab.Engine.Gguf.GgmlType.Q4_K)), cost.BlockBytes);
        Assert.Null(cost.ReadSizeNote()); // 2.3 MiB: between the measured 1 and 8 MiB
        var small = CostModel.For(again, preset, MoeLab.Engine.Gguf.GgmlType.Q4_K, MoeLab.Engine.Gguf.GgmlType.Q4_K, blockBytes: 64 << 10);
        Assert.Contains("down to 128 KiB", small.ReadSizeNote());
    }

    [Theory]
    [InlineData("latency_us: 349.5", "latency_us: -1", "swept.yaml:9: storage.reads[1]: ", "latency_us (-1) not negative")]
    [InlineData("{ block_kib: 8192, queue_depth: 2,", "{ block_kib: 128, queue_depth: 2,", "swept.yaml:12: storage.reads[4]: ", "a second point at block_kib 128, queue_depth 2 (storage.reads[3] is the first)")]
    [InlineData("default_block_kib: 0", "default_block_kib: -4", "swept.yaml:4: storage.default_block_kib: ", "must be 0")]
    [InlineData("read_slowdown_under_compute: 1.5", "read_slowdown_under_compute: -2", "swept.yaml:6: storage.read_slowdown_under_compute: ", "must not be negative")]
    [InlineData("resume_after_stall_us: 150", "resume_after_stall_us: -1", "swept.yaml:13: compute.resume_after_stall_us: ", "must not be negative")]
    public void ABadProfileLineIsNamedByFileLineAndWhatIsWrong(string from, string to, string where, string what)
    {
        var e = Assert.Throws<InvalidDataException>(() => DeviceProfile.Parse(SweptProfile.Replace(from, to, StringComparison.Ordinal), "swept.yaml"));
        Assert.StartsWith(where, e.Message, StringComparison.Ordinal);
        Assert.Contains(what, e.Message, StringComparison.Ordinal);
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
