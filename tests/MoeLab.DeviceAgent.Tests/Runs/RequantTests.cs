using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Model;

namespace MoeLab.DeviceAgent.Tests.Runs;

/// <summary>
/// <c>moelab model requant</c>'s side files: a requanted copy drives the precision policies to exactly the logits of
/// an independently built copy (the test quantizes the model's F32 experts itself) and of a model that stores its
/// experts in that type natively; a side file of another model, a truncated one, or a foreign file is refused.
/// </summary>
public sealed class RequantTests : IDisposable
{
    private static readonly int[] Tokens = [1, 17, 250, 3, 99, 42, 5, 311, 7, 200, 64, 128, 9, 77];

    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-requant-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Synth(string sub, ulong seed = 31)
    {
        string dir = Directory.CreateDirectory(Path.Combine(_dir, sub)).FullName;
        string path = Path.Combine(dir, "tiny.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.F32, Seed: seed), path);
        return path;
    }

    private static float[][] Logits(string model, string precision, long? budget = 300 << 10)
    {
        using var s = EngineSession.Open(model, new EngineSettings { BudgetBytes = budget, IoMode = "buffered", Precision = precision, Threads = 1, MaxContext = 64 });
        return Tokens.Select(t => s.Model.Forward(t).ToArray()).ToArray();
    }

    private static void AssertSame(float[][] a, float[][] b, string what)
    {
        for (int i = 0; i < a.Length; i++)
        {
            Assert.True(a[i].AsSpan().SequenceEqual(b[i]), $"{what}: logits differ at position {i}");
        }
    }

    [Theory]
    [InlineData(GgmlType.Q4_0, "uniform-bits:bits=4")]
    [InlineData(GgmlType.Q4_0, "low-bit-on-miss:bits=4,high_weight=0.6")]
    [InlineData(GgmlType.Q8_0, "uniform-bits:bits=8")]
    public void A_requanted_copy_gives_the_logits_of_an_independently_quantized_copy(GgmlType type, string precision)
    {
        string requanted = Synth("a");
        string written = ExpertRequantizer.Write(requanted, type);
        Assert.Equal(ExpertVariantFiles.PathFor(requanted, type), written);

        string independent = Synth("b");
        WriteSideFileByHand(independent, type);

        var viaRequant = Logits(requanted, precision);
        AssertSame(viaRequant, Logits(independent, precision), precision);
        var native = Logits(requanted, "native");
        Assert.False(native[^1].AsSpan().SequenceEqual(viaRequant[^1]), "the low-precision copy should change the logits");
    }

    [Fact]
    public void Uniform_bits_on_a_requanted_copy_computes_as_a_model_storing_its_experts_in_that_type()
    {
        string model = Synth("a");
        ExpertRequantizer.Write(model, GgmlType.Q4_0);
        string q4 = Path.Combine(_dir, "experts-q4_0-in-file.gguf");
        CopyWithExpertsAs(model, q4, GgmlType.Q4_0);
        AssertSame(Logits(model, "uniform-bits:bits=4"), Logits(q4, "native", budget: null), "uniform-bits vs Q4_0 experts in the model file");
    }

    [Fact]
    public void A_side_file_of_another_model_is_refused_with_the_fix()
    {
        string model = Synth("a", seed: 31);
        string other = Synth("b", seed: 32);
        string side = ExpertRequantizer.Write(other, GgmlType.Q4_0);
        File.Copy(side, ExpertVariantFiles.PathFor(model, GgmlType.Q4_0));
        var e = Assert.ThrowsAny<InvalidDataException>(() => Logits(model, "uniform-bits:bits=4"));
        Assert.Contains(ExpertVariantFiles.PathFor(model, GgmlType.Q4_0), e.Message);
        Assert.Contains("moelab model requant", e.Message);
    }

    [Fact]
    public void A_truncated_side_file_is_refused_naming_it()
    {
        string model = Synth("a");
        string side = ExpertRequantizer.Write(model, GgmlType.Q4_0);
        using (var f = File.Open(side, FileMode.Open))
        {
            f.SetLength(f.Length / 2);
        }

        var e = Assert.ThrowsAny<InvalidDataException>(() => Logits(model, "uniform-bits:bits=4"));
        Assert.Contains(side, e.Message);
        Assert.Contains("requant", e.Message);
    }

    [Fact]
    public void A_foreign_gguf_under_a_side_file_name_is_refused()
    {
        string model = Synth("a");
        File.Copy(model, ExpertVariantFiles.PathFor(model, GgmlType.Q4_0));
        var e = Assert.ThrowsAny<InvalidDataException>(() => Logits(model, "uniform-bits:bits=4"));
        Assert.Contains("not a moelab expert variant file", e.Message);
    }

    [Fact]
    public void Rows_too_narrow_for_a_k_quant_are_refused_before_anything_is_written()
    {
        string model = Synth("a");
        var e = Assert.Throws<NotSupportedException>(() => ExpertRequantizer.Write(model, GgmlType.Q4_K));
        Assert.Contains("blocks of 256", e.Message);
        Assert.Empty(ExpertVariantFiles.Find(model));
    }

    /// <summary>The test's own side file: the F32 experts quantized row by row, with the variant metadata.</summary>
    private static void WriteSideFileByHand(string model, GgmlType type)
    {
        var file = GgufFile.Open(model);
        byte[] bytes = File.ReadAllBytes(model);
        var w = new GgufWriter();
        w.Set("general.architecture", file.Architecture)
         .Set(ExpertVariantFiles.SourceKey, Path.GetFileName(model))
         .Set(ExpertVariantFiles.FingerprintKey, ExpertVariantFiles.Fingerprint(file))
         .Set(ExpertVariantFiles.TypeKey, type.ToString().ToLowerInvariant());
        foreach (var t in file.Tensors.Where(ExpertTensors.IsRoutedExpert))
        {
            w.AddTensor(t.Name, type, t.Dims, Quantize(bytes, t, type));
        }

        w.Write(ExpertVariantFiles.PathFor(model, type));
    }

    /// <summary>A copy of the model with its routed experts stored as <paramref name="type"/> and everything else unchanged.</summary>
    private static void CopyWithExpertsAs(string model, string path, GgmlType type)
    {
        var file = GgufFile.Open(model);
        byte[] bytes = File.ReadAllBytes(model);
        var w = new GgufWriter();
        foreach (var kv in file.MetadataInOrder)
        {
            w.Set(kv.Key, kv.Value);
        }

        foreach (var t in file.Tensors)
        {
            bool expert = ExpertTensors.IsRoutedExpert(t);
            w.AddTensor(t.Name, expert ? type : t.Type, t.Dims, expert ? Quantize(bytes, t, type) : bytes.AsSpan((int)t.AbsoluteOffset, (int)t.ByteSize).ToArray());
        }

        w.Write(path);
    }

    private static byte[] Quantize(byte[] file, GgufTensorInfo t, GgmlType type)
    {
        Assert.Equal(GgmlType.F32, t.Type);
        int cols = (int)t.Dims[0];
        long rows = t.ElementCount / cols;
        int rowBytes = (int)GgmlTypeInfo.RowBytes(type, cols);
        var output = new byte[rows * rowBytes];
        var values = new float[cols];
        for (long r = 0; r < rows; r++)
        {
            Buffer.BlockCopy(file, (int)(t.AbsoluteOffset + (r * cols * 4)), values, 0, cols * 4);
            Quantizer.QuantizeRow(type, values, output.AsSpan((int)(r * rowBytes), rowBytes));
        }

        return output;
    }
}
