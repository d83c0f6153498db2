using System.Diagnostics;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using Xunit.Abstractions;

namespace MoeLab.Engine.Tests.Model;

/// <summary>
/// MoeLab's logits against llama.cpp's on the same files, including files quantized by llama.cpp's own quantizer.
/// Needs MOELAB_LLAMA_LOGITS (tests/peers/llama-logits.cpp, built) and MOELAB_LLAMA_BIN (llama.cpp's build/bin with
/// llama-quantize); skips with a message otherwise. See tests/peers/README.md.
/// </summary>
[Trait("Category", "Slow")]
public sealed class LlamaCppParityTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-parity-").FullName;
    private static readonly int[] Tokens = [1, 17, 250, 3, 99, 42, 5, 311, 7, 64, 128, 200];

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, double> Cases() => new()
    {
        // F16: both round the activations to F16 before F16 dot products (ggml's vec_dot_type; MoeLab kept them in
        // F32 until 2026-11-25: 3.0e-3). What is left (1.2e-3) is F16 rounding flipping on last-bit differences of
        // summation order: llama.cpp's own batched and token-by-token logits differ by 1.3e-3 on this file.
        { "F16", 2e-3 },
        // Quantized: both quantize activations to Q8_0/Q8_K blocks, so the engines agree to about 1e-6 unless a
        // last-bit difference (summation order, exp) moves one activation across a rounding boundary of its block:
        // one flipped quant (or fp16 block scale) then moves the logits by up to a few 1e-2 on these random-weight
        // models, and the KV cache carries it to later positions. Shown 2026-11-25 with llama.cpp's intermediate
        // tensors for small-qwen3moe linear:2 Q8_0 (below) and Q4_1; Q8_0 here differs at position 4 only (8e-4,
        // every other position 5e-7), and the rope cases in F32 (no activation quantization) agree to 1e-5.
        { "Q8_0", 3e-2 },
        { "Q4_0", 5e-2 },
        { "Q4_K_M", 5e-2 },
        // Files llama-quantize writes with the Q5_K/Q5_0/Q5_1/Q4_1 kernels (Q5_K_M also mixes in Q6_K). Measured
        // 2026-11-25: Q5_K_M, Q5_0, Q5_1 about 1e-6; Q4_1 4.5e-2, explained: MoeLab's Q4_1 kernel equals
        // ggml_vec_dot_q4_1_q8_1 bit for bit on the same input (checked against libggml), but at position 0 one SwiGLU
        // output differs in its last bit (ggml's own expf), which flips the fp16 scale d of its Q8_1 block. Q4_1's dot
        // is d_w·d·Σq_w·q_x + m·s with unsigned q_w (mean 7.5) and s from the unrounded d, so one ulp of d moves every
        // row of that expert's down projection the same way (4e-4), which the following layer amplifies.
        { "Q5_K_M", 5e-2 },
        { "Q5_0", 5e-2 },
        { "Q5_1", 5e-2 },
        { "Q4_1", 5e-2 },
    };

    [LlamaCppTheory]
    [MemberData(nameof(Cases))]
    public void Logits_and_router_choices_match_llama_cpp(string quant, double tolerance)
    {
        string dumper = Environment.GetEnvironmentVariable("MOELAB_LLAMA_LOGITS")!;
        string bin = Environment.GetEnvironmentVariable("MOELAB_LLAMA_BIN")!;

        string f16 = Path.Combine(_dir, "m-F16.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("small-qwen3moe")!, 2, GgmlType.F16, Seed: 11), f16);
        string model = Quantize(bin, f16, "m", quant);

        string theirs = Path.Combine(_dir, "llama.bin"), theirRouter = Path.Combine(_dir, "llama-router.csv");
        Run(dumper, $"{model} {string.Join(',', Tokens)} {theirs} {theirRouter} --threads 2 --kv-f32 --no-fa");

        var (max, same, total) = Compare(model, theirs, theirRouter);
        output.WriteLine($"{quant}: max |Δlogit| {max:G4}; router {same}/{total} identical");
        Assert.Equal(total, same);
        Assert.True(max <= tolerance, $"{quant}: max |Δlogit| {max} > {tolerance}");
    }

    public static TheoryData<string, string, string, double> LayoutCases() => new()
    {
        // Fused attn_qkv (+ biases) and fused ffn_gate_up_exps as other converters write them (llama.cpp's
        // create_tensor_qkv / create_tensor_gate_up_exps); tolerances as above.
        { "tiny-qwen3moe", "fused-qkv,qkv-bias", "F16", 2e-3 },
        { "small-qwen3moe", "fused-qkv", "Q4_K_M", 5e-2 },
        { "tiny-mixtral", "fused-qkv,qkv-bias", "F16", 2e-3 },
        { "small-mixtral", "fused-qkv", "Q8_0", 3e-2 },
        { "small-mixtral", "", "Q4_0", 5e-2 },
        // Q4_K_M puts Mixtral's attn_output in Q5_K (n_expert == 8): loads since the Q5_K kernel (1.2e-6, 2026-11-25).
        { "small-mixtral", "", "Q4_K_M", 5e-2 },
        { "small-qwen35moe", "fused-gate-up", "Q8_0", 3e-2 },
        { "small-qwen35moe", "fused-gate-up", "Q6_K", 3e-2 },
        // Long-context rope scaling keys (rope.scaling.type linear/yarn, factor, original_context_length). Checked in
        // F32, where no activation is quantized, so the rope angles are compared to float precision (measured
        // 2026-11-25: 2e-6..1e-5). The small-qwen3moe linear:2 Q8_0 gap once left out here (0.035; 0.195 with 4
        // layers) was not the rope: llama.cpp's roped Q/K agree, and one Q8_0 quant of the FFN input at position 1
        // flips on a last-bit difference (see the quantized cases above); the KV cache carries it on.
        { "small-qwen3moe", "linear:2", "F32", 1e-4 },
        { "small-qwen3moe", "yarn:4", "F32", 1e-4 },
        { "small-qwen35moe", "linear:2", "F32", 1e-4 },
        { "small-qwen35moe", "yarn:4", "F32", 1e-4 },
        { "small-mixtral", "linear:2", "F32", 1e-4 },
        { "small-mixtral", "yarn:4", "F32", 1e-4 },
        { "small-qwen3moe", "yarn:4", "Q8_0", 3e-2 },
        { "small-qwen35moe", "yarn:4", "Q8_0", 3e-2 },
        { "small-mixtral", "yarn:4", "Q8_0", 3e-2 },
    };

    [LlamaCppTheory]
    [MemberData(nameof(LayoutCases))]
    public void Tensor_layout_variants_match_llama_cpp(string preset, string layout, string quant, double tolerance)
    {
        string dumper = Environment.GetEnvironmentVariable("MOELAB_LLAMA_LOGITS")!;
        string bin = Environment.GetEnvironmentVariable("MOELAB_LLAMA_BIN")!;
        var p = ModelPreset.Find(preset)!;
        var flags = layout.Split(',', StringSplitOptions.RemoveEmptyEntries);
        // F32 cases are synthesized in F32; the rest in F16 and quantized by llama-quantize.
        var synthType = quant == "F32" ? GgmlType.F32 : GgmlType.F16;
        string f16 = Path.Combine(_dir, $"{preset}-{synthType}.gguf");
        ModelSynthesizer.Write(new SynthOptions(p, Math.Min(p.Layers, 4), synthType, Seed: 11)
        {
            FusedQkv = flags.Contains("fused-qkv"),
            FusedGateUp = flags.Contains("fused-gate-up"),
            AttentionBias = flags.Contains("qkv-bias"),
            RopeScalingType = flags.FirstOrDefault(x => x.Contains(':'))?.Split(':')[0],
            RopeScalingFactor = flags.FirstOrDefault(x => x.Contains(':')) is { } rs ? float.Parse(rs.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture) : 1f,
        }, f16);
        string model = Quantize(bin, f16, preset, quant);

        var unsupported = GgufFile.Open(model).Tensors.FirstOrDefault(t => t.Dims.Length > 1 && !MoeLab.Engine.Kernels.MatVec.Supports(t.Type));
        if (unsupported is not null)
        {
            var e = Assert.Throws<GgufFormatException>(() => MoeModel.Load(model).Dispose());
            Assert.Contains(unsupported.Type.ToString(), e.Message);
            output.WriteLine($"{preset} {layout} {quant}: refused as expected: {e.Message}");
            return;
        }

        string theirs = Path.Combine(_dir, "llama.bin"), theirRouter = Path.Combine(_dir, "llama-router.csv");
        Run(dumper, $"{model} {string.Join(',', Tokens)} {theirs} {theirRouter} --threads 2 --kv-f32 --no-fa");
        var (max, same, total) = Compare(model, theirs, theirRouter);
        output.WriteLine($"{preset} {layout} {quant}: max |Δlogit| {max:G4}; router {same}/{total} identical");
        Assert.Equal(total, same);
        Assert.True(max <= tolerance, $"{preset} {layout} {quant}: max |Δlogit| {max} > {tolerance}");
    }

    public static TheoryData<string, string, double> Qwen35MoeCases() => new()
    {
        // Against llama.cpp's plain decode path (--no-repack --token-by-token), which sums as MoeLab's AVX2 kernels do
        // (measured 4.8e-7..1.7e-6). Its default repacked/batched kernels sum in another order, and on these files a
        // last-bit difference flips one activation quant sitting on a rounding tie (Q4_K_M: x·iscale = −0.49998 at layer 3,
        // position 9, → −1 instead of 0), which the recurrence and the router weights turn into 0.15 max |Δlogit| (Q4_0
        // batched 0.029) — the noise floor of any comparison of quantized activations, not a formula difference. The same
        // happens on MoeLab's Vector128 tier (DOTNET_EnableAVX2=0: 0.15), so these cases hold on the AVX2 tiers only.
        // Same quantized mixes llama-quantize writes (Q4_K_M keeps ssm_alpha/ssm_beta in Q4_K); bar 1e-3.
        { "small-qwen35moe", "Q8_0", 1e-3 },
        { "small-qwen35moe", "Q4_0", 1e-3 },
        { "small-qwen35moe", "Q4_K_M", 1e-3 },
        { "small-qwen35moe", "Q5_K_M", 1e-3 },
        { "small-qwen35moe", "Q6_K", 1e-3 },
        // F16: both engines round the activation to F16 before each F16 dot, so a last-bit difference upstream (summation
        // order) can flip a rounding, and Gated DeltaNet's recurrent state carries it to every later token: llama.cpp's
        // own batched and token-by-token logits differ by 1.2e-2 on this file (8 layers, 6 recurrent), which bounds any
        // comparison. Checked against both of its paths; measured 1.3e-2 and 4.0e-3 (0.095 while MoeLab dotted F16
        // weights with unrounded activations). small-qwen35moe F16 is left out: its fourth router choice at position 6,
        // layer 2 is a tie to six digits (experts 4 and 14, p = 2.10e-4), which that noise decides either way.
        { "tiny-qwen35moe", "F16", 2e-2 },
        // F32: no activation rounding at all, so only summation order differs (llama.cpp's own batched vs token-by-token:
        // 3.7e-5 on this file; MoeLab measured 8.3e-5).
        { "tiny-qwen35moe", "F32", 5e-4 },
    };

    /// <summary>Qwen3.5 (qwen35moe: Gated DeltaNet + gated full attention) against llama.cpp's decode path, routers identical.</summary>
    [LlamaCppTheory]
    [MemberData(nameof(Qwen35MoeCases))]
    public void Qwen35moe_logits_and_router_choices_match_llama_cpp(string preset, string quant, double tolerance)
    {
        string dumper = Environment.GetEnvironmentVariable("MOELAB_LLAMA_LOGITS")!;
        string bin = Environment.GetEnvironmentVariable("MOELAB_LLAMA_BIN")!;
        var p = ModelPreset.Find(preset)!;
        string f16 = Path.Combine(_dir, $"{preset}-{(quant == "F32" ? "F32" : "F16")}.gguf");
        ModelSynthesizer.Write(new SynthOptions(p, p.Layers, quant == "F32" ? GgmlType.F32 : GgmlType.F16, Seed: 11), f16);
        string model = Quantize(bin, f16, preset, quant);

        string theirs = Path.Combine(_dir, "llama.bin"), theirRouter = Path.Combine(_dir, "llama-router.csv");
        Run(dumper, $"{model} {string.Join(',', Tokens)} {theirs} {theirRouter} --threads 2 --kv-f32 --no-fa --no-repack --token-by-token");
        var (max, same, total) = Compare(model, theirs, theirRouter);
        output.WriteLine($"{preset} {quant}: max |Δlogit| {max:G4}; router {same}/{total} identical");
        Assert.Equal(total, same);
        Assert.True(max <= tolerance, $"{preset} {quant}: max |Δlogit| {max} > {tolerance}");
        if (quant == "F16")
        {
            string batched = Path.Combine(_dir, "llama-batch.bin"), batchedRouter = Path.Combine(_dir, "llama-batch-router.csv");
            Run(dumper, $"{model} {string.Join(',', Tokens)} {batched} {batchedRouter} --threads 2 --kv-f32 --no-fa --no-repack");
            var (maxBatched, sameBatched, _) = Compare(model, batched, batchedRouter);
            output.WriteLine($"{preset} {quant} vs llama.cpp batched: max |Δlogit| {maxBatched:G4}; router {sameBatched}/{total} identical; llama.cpp batched vs token-by-token {MaxDifference(theirs, batched):G4}");
            Assert.Equal(total, sameBatched);
            Assert.True(maxBatched <= tolerance, $"{preset} {quant} batched: max |Δlogit| {maxBatched} > {tolerance}");
        }
    }

    private static double MaxDifference(string a, string b)
    {
        var x = File.ReadAllBytes(a);
        var y = File.ReadAllBytes(b);
        Assert.Equal(x.Length, y.Length);
        int header = 12 + (4 * Tokens.Length);
        double max = 0;
        for (int i = header; i < x.Length; i += 4)
        {
            max = Math.Max(max, Math.Abs(BitConverter.ToSingle(x, i) - BitConverter.ToSingle(y, i)));
        }

        return max;
    }

    /// <summary>
    /// llama.cpp's default F16 KV cache (no --kv-f32) against MoeLab's <see cref="KvCacheType.F16"/>, on F32 weights so
    /// that no activation is quantized: the option must reproduce the cache's rounding, and MoeLab's default F32 cache
    /// must differ from it by more (else the comparison shows nothing).
    /// </summary>
    // small-mixtral (llama graph) is not listed: measured 2026-11-25 its F16 cache comes only to 2.3e-3 (F32 cache
    // 3.0e-3) of llama.cpp's default cache, a remaining difference not yet found.
    [LlamaCppTheory]
    [InlineData("small-qwen3moe")]
    public void F16_kv_cache_matches_llama_cpp_default_cache(string preset)
    {
        string dumper = Environment.GetEnvironmentVariable("MOELAB_LLAMA_LOGITS")!;
        var p = ModelPreset.Find(preset)!;
        string model = Path.Combine(_dir, $"{preset}-F32.gguf");
        ModelSynthesizer.Write(new SynthOptions(p, Math.Min(p.Layers, 4), GgmlType.F32, Seed: 11), model);
        string theirs = Path.Combine(_dir, "llama.bin"), theirRouter = Path.Combine(_dir, "llama-router.csv");
        Run(dumper, $"{model} {string.Join(',', Tokens)} {theirs} {theirRouter} --threads 2 --no-fa");
        var (f16, same, total) = Compare(model, theirs, theirRouter, KvCacheType.F16);
        var (f32, _, _) = Compare(model, theirs, theirRouter, KvCacheType.F32);
        output.WriteLine($"{preset} F32 weights, llama.cpp F16 KV cache: MoeLab F16 cache max |Δlogit| {f16:G4}, F32 cache {f32:G4}; router {same}/{total} identical");
        Assert.Equal(total, same);
        Assert.True(f16 <= 1e-3, $"{preset}: F16 KV cache max |Δlogit| {f16} > 1e-3");
        Assert.True(f16 * 4 < f32, $"{preset}: the F16 cache ({f16}) is not clearly closer to llama.cpp's than the F32 cache ({f32})");
    }

    /// <summary>The synthesized F16/F32 file itself, or its <paramref name="quant"/> mix written by llama-quantize.</summary>
    private string Quantize(string bin, string source, string stem, string quant)
    {
        if (quant is "F16" or "F32") return source;
        string model = Path.Combine(_dir, $"{stem}-{quant}.gguf");
        Run(Path.Combine(bin, "llama-quantize"), $"{source} {model} {quant}");
        return model;
    }

    private static (double Max, int Same, int Total) Compare(string model, string theirs, string theirRouter, KvCacheType kvCache = KvCacheType.F32)
    {
        var observer = new Routes();
        using var m = MoeModel.Load(model, new ModelOptions { Threads = 2, MaxContext = 32, Observer = observer, KvCache = kvCache });
        using var r = new BinaryReader(File.OpenRead(theirs));
        Assert.Equal("LGTS"u8.ToArray(), r.ReadBytes(4));
        Assert.Equal(Tokens.Length, r.ReadInt32());
        int vocab = r.ReadInt32();
        Assert.Equal(m.Config.Vocab, vocab);
        r.ReadBytes(4 * Tokens.Length);
        double max = 0;
        foreach (int t in Tokens)
        {
            var ours = m.Forward(t);
            for (int v = 0; v < vocab; v++)
            {
                max = Math.Max(max, Math.Abs(r.ReadSingle() - ours[v]));
            }
        }

        var llamaRoutes = File.ReadLines(theirRouter).Skip(1).Select(l => l.Split(',').Select(int.Parse).ToArray())
            .GroupBy(f => (f[0], f[1])).ToDictionary(g => g.Key, g => g.Select(f => f[3]).Order().ToArray());
        int same = observer.Seen.Count(kv => llamaRoutes.TryGetValue(kv.Key, out var e) && e.SequenceEqual(kv.Value.Order()));
        return (max, same, observer.Seen.Count);
    }

    private static void Run(string exe, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(exe, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        string err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"{exe} {args} failed: {err[^Math.Min(err.Length, 2000)..]}");
    }

    private sealed class Routes : IRoutingObserver
    {
        public Dictionary<(int, int), int[]> Seen { get; } = [];

        public void Observe(in MoeLab.Engine.Policies.RoutingObservation o) => Seen[(o.Token, o.Layer)] = o.Experts.ToArray();
    }
}

/// <summary>Skips, saying why, unless the llama.cpp peer tools are configured.</summary>
public sealed class LlamaCppTheoryAttribute : TheoryAttribute
{
    public LlamaCppTheoryAttribute()
    {
        string? dumper = Environment.GetEnvironmentVariable("MOELAB_LLAMA_LOGITS");
        string? bin = Environment.GetEnvironmentVariable("MOELAB_LLAMA_BIN");
        if (dumper is null || bin is null || !File.Exists(dumper) || !File.Exists(Path.Combine(bin, "llama-quantize")))
        {
            Skip = "llama.cpp peer not configured: set MOELAB_LLAMA_LOGITS and MOELAB_LLAMA_BIN (tests/peers/README.md)";
        }
    }
}
