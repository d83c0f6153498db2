using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Harness.Simulation;

namespace MoeLab.Harness.Tests.Simulation;

/// <summary>The simulator against the engine: the same trace, budget and policy class give the same counts.</summary>
public sealed class CalibrationCheckTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-calcheck-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal static string Synthesize(string dir, string preset, int? layers = null, GgmlType quant = GgmlType.Q4_0)
    {
        string path = Path.Combine(dir, $"{preset}-{layers}-{quant}.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, layers, quant), path);
        return path;
    }

    private string Model(string preset, int? layers = null, GgmlType quant = GgmlType.Q4_0) => Synthesize(_dir, preset, layers, quant);

    internal static DeviceProfile HostProfile()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string p = Path.Combine(d.FullName, "experiments", "devices", "host.yaml");
            if (File.Exists(p)) return DeviceProfile.Load(p);
        }

        throw new FileNotFoundException("experiments/devices/host.yaml not found above the test binaries");
    }

    internal static long ExpertBytes(string model) =>
        GgufFile.Open(model).Tensors.Where(ExpertTensors.IsRoutedExpert).Sum(t => t.ByteSize);

    [Theory]
    [InlineData("lru")]
    [InlineData("lfu")]
    [InlineData("arc")]
    [InlineData("fifo")]
    public void HitsMissesAndBytesReadEqualTheEnginesExactly(string cache)
    {
        string model = Model("tiny-qwen3moe");
        var r = CalibrationCheck.Run(new CalibrationCheckOptions
        {
            ModelPath = model,
            // 16 buffers of 16 KiB, 8 of them working: a cache of 8 of the 16 experts, so the policy's choices matter.
            Settings = new EngineSettings { BudgetBytes = 256 << 10, IoMode = "direct", Cache = cache },
            Prompts = ["The expert cache", "Once upon a time"],
            Tokens = 12,
            Profile = HostProfile(),
        });
        Assert.Equal(24, r.Measured.Tokens);
        Assert.Equal(24, r.Predicted.Tokens);
        Assert.True(r.Measured.Misses > 20, $"only {r.Measured.Misses} misses: the budget does not force the policy to choose");
        Assert.True(r.Measured.Hits > 0, "no hits at all: the check compares nothing about the policy");
        Assert.Equal(r.Measured.Hits, r.Predicted.Hits);
        Assert.Equal(r.Measured.Misses, r.Predicted.Misses);
        Assert.Equal(r.Measured.BytesRead, r.Predicted.BytesRead);
        Assert.Equal(r.Measured.Misses * r.Cost.ExpertBytes, r.Measured.BytesRead);
        Assert.True(r.CountsMatch);
    }

    [Fact]
    public void TheCostModelTakesTheShapeFromTheFile()
    {
        string model = Model("tiny-qwen3moe");
        var cost = CalibrationCheck.CostFor(model, HostProfile(), queueDepth: 4);
        var file = GgufFile.Open(model);
        Assert.Equal(ExpertBytes(model) / (2 * 8), cost.ExpertBytes); // 2 layers × 8 experts, all the same size
        long resident = file.Tensors.Where(t => !ExpertTensors.IsRoutedExpert(t)).Sum(t => t.ByteSize);
        Assert.Equal(resident - file.FindTensor("token_embd.weight")!.ByteSize, cost.DenseBytesPerToken);
        Assert.Equal(4, cost.QueueDepth);
        Assert.Equal(3, (cost.ExpertBytes + cost.BlockBytes - 1) / cost.BlockBytes); // one read per slice: gate, up, down
    }
}
