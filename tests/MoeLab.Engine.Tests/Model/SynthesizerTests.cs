using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Model;

namespace MoeLab.Engine.Tests.Model;

public sealed class SynthesizerTests
{
    [Fact]
    public void Direct_random_Q4K_blocks_dequantize_to_a_centred_uniform_spread_within_the_scale()
    {
        const int rows = 64, cols = 512;
        const float scale = 0.05f;
        using var ms = new MemoryStream();
        ModelSynthesizer.WriteRandomQ4K(ms, rows, cols, scale, seed: 3);
        byte[] bytes = ms.ToArray();
        int rowBytes = (int)GgmlTypeInfo.RowBytes(GgmlType.Q4_K, cols);
        Assert.Equal(rows * rowBytes, bytes.Length);

        var values = new float[cols];
        var levels = new HashSet<float>();
        double sum = 0, sumSq = 0;
        for (int r = 0; r < rows; r++)
        {
            Dequantizer.DequantizeRow(GgmlType.Q4_K, bytes.AsSpan(r * rowBytes, rowBytes), values);
            foreach (float v in values)
            {
                Assert.InRange(v, -scale * 1.01f, scale * 1.01f);
                levels.Add(v);
                sum += v;
                sumSq += (double)v * v;
            }
        }

        int n = rows * cols;
        Assert.Equal(16, levels.Count);
        Assert.InRange(sum / n, -0.02 * scale, 0.02 * scale);
        // Discrete uniform on 16 levels spanning ±scale: σ = scale·√(255/12)/7.5 ≈ 0.615·scale.
        Assert.InRange(Math.Sqrt(sumSq / n), 0.58 * scale, 0.65 * scale);

        // Deterministic in the seed, different across seeds.
        using var again = new MemoryStream();
        ModelSynthesizer.WriteRandomQ4K(again, rows, cols, scale, seed: 3);
        Assert.Equal(bytes, again.ToArray());
        using var other = new MemoryStream();
        ModelSynthesizer.WriteRandomQ4K(other, rows, cols, scale, seed: 4);
        Assert.NotEqual(bytes, other.ToArray());
    }

    [Fact]
    public void Qwen35_full_width_metadata_matches_llama_cpp_keys()
    {
        // Metadata only (no tensor data): the 397B preset's keys and a full-attention layer's joint Q+gate shape.
        var p = ModelPreset.Find("qwen3.5-397b-a17b")!;
        Assert.Equal(64, p.RopeDimensions);
        Assert.Equal(7_077_888, p.ExpertBytes(GgmlType.Q4_K));
        var tiny = ModelPreset.Find("tiny-qwen35moe")!;
        string dir = Directory.CreateTempSubdirectory("moelab-synth-").FullName;
        try
        {
            string path = Path.Combine(dir, "t.gguf");
            ModelSynthesizer.Write(new SynthOptions(tiny, 4, GgmlType.F32), path);
            var f = GgufFile.Open(path);
            Assert.Equal("qwen35moe", f.Architecture);
            Assert.Equal(4, f.GetInt("qwen35moe.full_attention_interval"));
            Assert.Equal(tiny.LinearValueHeads * tiny.LinearValueHeadDim, f.GetInt("qwen35moe.ssm.inner_size"));
            Assert.Equal([1, 1, 0, 0], f.GetArray<int>("qwen35moe.rope.dimension_sections")!); // 2 rotated pairs; the 397B preset gets [11, 11, 10, 0]
            Assert.Equal("qwen35", f.GetStringOrNull("tokenizer.ggml.pre"));
            Assert.NotNull(f.FindTensor("blk.0.ssm_dt.bias"));
            Assert.NotNull(f.FindTensor("blk.0.ssm_a"));
            Assert.NotNull(f.FindTensor("blk.3.post_attention_norm.weight"));
            Assert.Single(f.Tensor("blk.3.ffn_gate_inp_shexp.weight").Dims);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
