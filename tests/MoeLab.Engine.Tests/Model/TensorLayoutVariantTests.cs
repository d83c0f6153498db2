using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Model;
using MoeLab.Engine.Tests.Experts;

namespace MoeLab.Engine.Tests.Model;

/// <summary>
/// The tensor layouts other converters write and llama.cpp accepts: a fused attn_qkv projection, a fused
/// ffn_gate_up_exps expert tensor, Q/K/V biases. The synthesizer writes the fused files with exactly the weights of
/// the separate ones, so the engine must give bit-identical logits on both; and files it cannot run (old per-expert
/// tensors, weight types without a kernel, per-expert scales) are refused at load with the tensor named.
/// </summary>
public sealed class TensorLayoutVariantTests : IDisposable
{
    private static readonly int[] Tokens = [1, 17, 250, 3, 99, 42, 5, 311, 7, 200];

    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-variants-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Synth(string preset, GgmlType quant, bool fusedQkv = false, bool fusedGateUp = false, bool bias = false)
    {
        string path = Path.Combine(_dir, $"{preset}-{quant}-{fusedQkv}-{fusedGateUp}-{bias}.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, null, quant, Seed: 13) { FusedQkv = fusedQkv, FusedGateUp = fusedGateUp, AttentionBias = bias }, path);
        return path;
    }

    private static float[][] Logits(string path, ModelOptions? options = null)
    {
        using var m = MoeModel.Load(path, options ?? new ModelOptions { Threads = 2, MaxContext = 32 });
        return Tokens.Select(t => m.Forward(t).ToArray()).ToArray();
    }

    [Theory]
    [InlineData("tiny-qwen3moe", GgmlType.F32, true, false)]
    [InlineData("tiny-qwen3moe", GgmlType.Q8_0, true, false)]
    [InlineData("tiny-mixtral", GgmlType.Q8_0, true, false)]
    [InlineData("tiny-qwen35moe", GgmlType.F32, false, true)]
    [InlineData("tiny-qwen35moe", GgmlType.Q8_0, false, true)]
    [InlineData("tiny-qwen3moe", GgmlType.Q8_0, true, true)]
    public void Fused_tensors_give_the_logits_of_separate_ones(string preset, GgmlType quant, bool fusedQkv, bool fusedGateUp)
    {
        string separate = Synth(preset, quant);
        string fused = Synth(preset, quant, fusedQkv, fusedGateUp);
        var f = GgufFile.Open(fused);
        string full = preset == "tiny-qwen35moe" ? "blk.3." : "blk.0."; // a full-attention layer
        Assert.Equal(fusedQkv, f.FindTensor(full + "attn_q.weight") is null);
        Assert.Equal(fusedGateUp, f.FindTensor("blk.0.ffn_gate_up_exps.weight") is not null);
        Assert.Equal(f.FindTensor("blk.0.ffn_gate_exps.weight") is null, fusedGateUp);

        var expected = Logits(separate);
        var actual = Logits(fused);
        for (int t = 0; t < Tokens.Length; t++)
        {
            Assert.Equal(expected[t], actual[t]);
        }
    }

    [Theory]
    [InlineData("tiny-qwen3moe")]
    [InlineData("tiny-mixtral")]
    public void Attention_biases_match_the_reference_and_fused_biases_the_separate_ones(string preset)
    {
        string separate = Synth(preset, GgmlType.F32, bias: true);
        var (reference, _) = new ReferenceMoe(separate).Run(Tokens);
        var logits = Logits(separate);
        var unbiased = Logits(Synth(preset, GgmlType.F32));
        double maxDelta = 0, biasEffect = 0;
        for (int t = 0; t < Tokens.Length; t++)
        {
            for (int v = 0; v < logits[t].Length; v++)
            {
                maxDelta = Math.Max(maxDelta, Math.Abs(logits[t][v] - reference[t][v]));
                biasEffect = Math.Max(biasEffect, Math.Abs(logits[t][v] - unbiased[t][v]));
            }
        }

        Assert.True(maxDelta <= 1e-4, $"{preset} with biases: max |Δlogit| vs reference = {maxDelta}");
        Assert.True(biasEffect > 1e-2, $"the biases should change the logits (max change {biasEffect})");

        var fused = Logits(Synth(preset, GgmlType.F32, fusedQkv: true, bias: true));
        for (int t = 0; t < Tokens.Length; t++)
        {
            Assert.Equal(logits[t], fused[t]);
        }
    }

    [Theory]
    [InlineData(IoMode.Buffered)]
    [InlineData(IoMode.Direct)]
    public unsafe void Fused_gate_up_experts_stream_in_two_reads_and_equal_resident(IoMode mode)
    {
        if (mode == IoMode.Direct && DirectIoProbe.Unsupported is not null) return;
        string separatePath = Synth("tiny-qwen35moe", GgmlType.Q8_0);
        string fusedPath = Synth("tiny-qwen35moe", GgmlType.Q8_0, fusedGateUp: true);
        var separate = ExpertTensors.Layout(GgufFile.Open(separatePath), ModelConfig.FromGguf(GgufFile.Open(separatePath)));
        var fused = ExpertTensors.Layout(GgufFile.Open(fusedPath), ModelConfig.FromGguf(GgufFile.Open(fusedPath)));
        using var a = new ExpertStore(separate, mode);
        using var b = new ExpertStore(fused, mode);
        var bufA = new AlignedBuffer(a.BufferBytes);
        var bufB = new AlignedBuffer(b.BufferBytes);
        try
        {
            for (int l = 0; l < fused.Layers; l++)
            {
                for (int e = 0; e < fused.ExpertsPerLayer; e++)
                {
                    Assert.Equal(3, a.Reads(0, l, e));
                    Assert.Equal(2, b.Reads(0, l, e));
                    Assert.True(fused[l, e].GateUpAdjacent);
                    Assert.Equal(separate[l, e].Bytes, fused[l, e].Bytes);
                    Assert.Equal(b.TransferBytes(0, l, e), b.ReadExpert(0, l, e, bufB.Pointer));
                    a.ReadExpert(0, l, e, bufA.Pointer);
                    var wa = a.View(0, l, e, bufA.Pointer);
                    var wb = b.View(0, l, e, bufB.Pointer);
                    Assert.Equal(wa.Gate.All.ToArray(), wb.Gate.All.ToArray());
                    Assert.Equal(wa.Up.All.ToArray(), wb.Up.All.ToArray());
                    Assert.Equal(wa.Down.All.ToArray(), wb.Down.All.ToArray());
                }
            }
        }
        finally
        {
            bufA.Dispose();
            bufB.Dispose();
        }

        var resident = Logits(fusedPath);
        StreamingExpertSource? source = null;
        ExpertStore? store = null;
        try
        {
            var streamed = Logits(fusedPath, new ModelOptions
            {
                Threads = 2,
                MaxContext = 32,
                ExpertSource = layout =>
                {
                    store = new ExpertStore(layout, mode);
                    var options = new StreamingOptions { BudgetBytes = 4 * store.BufferBytes, WorkingBuffers = 2 };
                    source = new StreamingExpertSource(store, options, new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), layout.Layers, layout.ExpertsPerLayer), new DemandFirstFifo(2));
                    return source;
                },
            });
            for (int t = 0; t < Tokens.Length; t++)
            {
                Assert.Equal(resident[t], streamed[t]);
            }

            var c = source!.Counters;
            Assert.True(c.Misses > fused.Layers * 4, $"only {c.Misses} misses: the budget does not force streaming");
            Assert.Equal(c.Misses * fused[0, 0].Bytes, c.BytesRead);
        }
        finally
        {
            source?.Dispose();
            store?.Dispose();
        }
    }

    [Fact]
    public void A_weight_type_without_a_kernel_is_refused_naming_the_tensor_and_type()
    {
        string source = Synth("tiny-qwen3moe", GgmlType.F32);
        string bad = Path.Combine(_dir, "q5k-like.gguf");
        // IQ4_NL (a block-32 type llama-quantize writes as a fallback) in place of layer 1's down experts.
        GgufRewriter.Rewrite(source, bad, (t, bytes) => t.Name == "blk.1.ffn_down_exps.weight"
            ? [new GgufRewriter.NewTensor(t.Name, GgmlType.IQ4_NL, t.Dims, new byte[GgufWriter.TensorBytes(GgmlType.IQ4_NL, t.Dims)])]
            : [GgufRewriter.Same(t, bytes)]);
        var e = Assert.Throws<GgufFormatException>(() => MoeModel.Load(bad).Dispose());
        Assert.Contains("blk.1.ffn_down_exps.weight", e.Message);
        Assert.Contains("IQ4_NL", e.Message);

        string badAttention = Path.Combine(_dir, "attn.gguf");
        GgufRewriter.Rewrite(source, badAttention, (t, bytes) => t.Name == "blk.0.attn_k.weight"
            ? [new GgufRewriter.NewTensor(t.Name, GgmlType.IQ4_NL, t.Dims, new byte[GgufWriter.TensorBytes(GgmlType.IQ4_NL, t.Dims)])]
            : [GgufRewriter.Same(t, bytes)]);
        e = Assert.Throws<GgufFormatException>(() => MoeModel.Load(badAttention).Dispose());
        Assert.Contains("blk.0.attn_k.weight", e.Message);
        Assert.Contains("IQ4_NL", e.Message);
    }

    [Fact]
    public void Old_per_expert_tensors_are_refused_with_the_fix()
    {
        string source = Synth("tiny-mixtral", GgmlType.F32);
        string old = Path.Combine(_dir, "per-expert.gguf");
        GgufRewriter.Rewrite(source, old, (t, bytes) =>
        {
            if (!t.Name.EndsWith("_exps.weight", StringComparison.Ordinal))
            {
                return [GgufRewriter.Same(t, bytes)];
            }

            // blk.N.ffn_gate_exps.weight {E, FF, n} → n tensors blk.N.ffn_gate.E.weight {E, FF}.
            string stem = t.Name.Replace("_exps.weight", "", StringComparison.Ordinal);
            int n = (int)t.Dims[2];
            int slab = bytes.Length / n;
            return Enumerable.Range(0, n).Select(e => new GgufRewriter.NewTensor($"{stem}.{e}.weight", t.Type, [t.Dims[0], t.Dims[1]], bytes[(e * slab)..((e + 1) * slab)]));
        });
        var e = Assert.Throws<GgufFormatException>(() => MoeModel.Load(old).Dispose());
        Assert.Contains("blk.0.ffn_gate.E.weight", e.Message);
        Assert.Contains("re-convert", e.Message);
    }

    [Fact]
    public void Per_expert_scale_tensors_are_refused()
    {
        string source = Synth("tiny-qwen3moe", GgmlType.F32);
        string scaled = Path.Combine(_dir, "scaled.gguf");
        GgufRewriter.Rewrite(source, scaled, (t, bytes) => t.Name == "blk.0.ffn_up_exps.weight"
            ? [GgufRewriter.Same(t, bytes), new GgufRewriter.NewTensor("blk.0.ffn_up_exps.scale", GgmlType.F32, [t.Dims[2]], new byte[4 * t.Dims[2]])]
            : [GgufRewriter.Same(t, bytes)]);
        var e = Assert.Throws<GgufFormatException>(() => MoeModel.Load(scaled).Dispose());
        Assert.Contains("blk.0.ffn_up_exps.scale", e.Message);
    }

    [Fact]
    public void Rope_scaling_keys_are_applied_and_unknown_kinds_refused()
    {
        var p = ModelPreset.Find("tiny-qwen3moe")!;
        string Write(string name, string? type, float factor)
        {
            string path = Path.Combine(_dir, name + ".gguf");
            ModelSynthesizer.Write(new SynthOptions(p, null, GgmlType.F32, Seed: 13) { RopeScalingType = type, RopeScalingFactor = factor }, path);
            return path;
        }

        var plain = Logits(Write("plain", null, 1f));
        // Linear scaling by 1 and "none" leave the angles alone; YaRN ×4 and linear ×2 change them (llama.cpp parity: LlamaCppParityTests).
        var unit = Logits(Write("linear1", "linear", 1f));
        for (int t = 0; t < Tokens.Length; t++)
        {
            Assert.Equal(plain[t], unit[t]);
        }

        foreach (var (type, factor) in new[] { ("yarn", 4f), ("linear", 2f) })
        {
            var scaled = Logits(Write(type, type, factor));
            double change = 0;
            for (int t = 1; t < Tokens.Length; t++)
            {
                for (int v = 0; v < scaled[t].Length; v++)
                {
                    change = Math.Max(change, Math.Abs(scaled[t][v] - plain[t][v]));
                }
            }

            Assert.True(change > 1e-3, $"{type} ×{factor} should change the logits after position 0 (max change {change})");
            var config = ModelConfig.FromGguf(GgufFile.Open(Path.Combine(_dir, type + ".gguf")));
            Assert.Equal(1f / factor, config.RopeScaling.FreqScale);
            Assert.Equal(type == "yarn", config.RopeScaling.Yarn);
        }

        string longrope = Path.Combine(_dir, "longrope.gguf");
        GgufRewriter.Rewrite(Write("base", "yarn", 4f), longrope, (t, bytes) => [GgufRewriter.Same(t, bytes)], ("qwen3moe.rope.scaling.type", GgufValue.Of("longrope")));
        var e = Assert.Throws<GgufFormatException>(() => MoeModel.Load(longrope).Dispose());
        Assert.Contains("longrope", e.Message);
    }

    /// <summary>A 4096-aligned native buffer (direct I/O needs it).</summary>
    private sealed unsafe class AlignedBuffer(long bytes) : IDisposable
    {
        public byte* Pointer { get; } = (byte*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc((nuint)bytes, 4096);

        public void Dispose() => System.Runtime.InteropServices.NativeMemory.AlignedFree(Pointer);
    }
}
