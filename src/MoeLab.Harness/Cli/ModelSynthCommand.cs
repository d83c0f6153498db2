using System.Globalization;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab model synth</c>: writes a random-weight GGUF with a real model's exact layer shape.</summary>
public sealed class ModelSynthCommand : ICliCommand
{
    public string Name => "model synth";

    public string Summary => "write a random-weight GGUF with a real model's exact per-layer shape";

    public string Usage =>
        "usage: moelab model synth --preset NAME [--layers N] [--quant F32|F16|BF16|Q8_0|Q4_0|Q4_1|Q5_0|Q5_1|Q4_K|Q5_K|Q6_K|Q2_K|Q3_K] [--seed S]\n" +
        "                          [--fused-qkv] [--fused-gate-up] [--qkv-bias] [--rope-scaling yarn|linear:FACTOR]\n" +
        "                          [--layer-update-scale S] --out F.gguf\n" +
        "presets: " + string.Join(", ", ModelPreset.All.Select(p => p.Name)) + "\n" +
        "--layers keeps full width and every expert per layer, with fewer layers (a slice of the real depth).\n" +
        "--fused-qkv writes blk.N.attn_qkv.weight, --fused-gate-up blk.N.ffn_gate_up_exps.weight (tensor layouts other\n" +
        "converters produce; same weights as the separate tensors for the same seed); --qkv-bias adds Q/K/V biases;\n" +
        "--rope-scaling writes rope.scaling.* keys (long-context checkpoints).\n" +
        "--layer-update-scale S multiplies the initial range of every block's output projection (attn_output, ssm_out,\n" +
        "ffn_down_exps, ffn_down_shexp) by S (default 1): S < 1 makes each block a small update to the residual stream,\n" +
        "as in trained models (see docs/benchmarks.md), recorded as " + SynthOptions.LayerUpdateScaleKey + ".";

    public int Run(CliArgs args)
    {
        string presetName = args.Required("preset");
        var preset = ModelPreset.Find(presetName) ?? throw new CliUsageException(
            $"unknown preset '{presetName}'; known: {string.Join(", ", ModelPreset.All.Select(p => p.Name))}");
        int? layers = args.Option("layers") is { } l ? int.Parse(l, CultureInfo.InvariantCulture) : null;
        var quant = ParseQuant(args.Option("quant") ?? "F32");
        ulong seed = (ulong)args.Int("seed", 1);
        string output = args.Required("out");
        var options = new SynthOptions(preset, layers, quant, seed)
        {
            FusedQkv = args.Flag("fused-qkv"),
            FusedGateUp = args.Flag("fused-gate-up"),
            AttentionBias = args.Flag("qkv-bias"),
            LayerUpdateScale = LayerUpdateScale(args.Option("layer-update-scale")),
        };
        if (args.Option("rope-scaling") is { } scaling)
        {
            // TYPE:FACTOR, e.g. yarn:4 (Qwen3's 128K GGUFs) or linear:2.
            var parts = scaling.Split(':');
            if (parts.Length != 2 || parts[0] is not ("yarn" or "linear") || !float.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out float factor) || factor <= 0)
            {
                throw new CliUsageException($"--rope-scaling '{scaling}': expected yarn:FACTOR or linear:FACTOR");
            }

            options = options with { RopeScalingType = parts[0], RopeScalingFactor = factor };
        }

        args.EnsureAllUsed();
        args.EnsureNoPositional();

        int n = layers ?? preset.Layers;
        Console.Error.WriteLine($"synthesizing {preset.Name}: {n} of {preset.Layers} layers, {preset.Experts} experts/layer, {quant}; " +
                                $"routed experts {Bytes(preset.ExpertBytes(ModelSynthesizer.Fit(quant, preset.Hidden)) * preset.Experts * n)}");
        int lastPercent = -1;
        ModelSynthesizer.Write(options, output, new Progress(p =>
        {
            int percent = (int)(p * 100);
            if (percent / 5 != lastPercent / 5)
            {
                lastPercent = percent;
                Console.Error.Write($"\r  {percent,3}%");
            }
        }));
        Console.Error.WriteLine();
        Console.WriteLine($"wrote {output} ({Bytes(new FileInfo(output).Length)})");
        return 0;
    }

    private static float LayerUpdateScale(string? text) =>
        text is null ? 1f
        : float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float s) && s > 0 && float.IsFinite(s) ? s
        : throw new CliUsageException($"--layer-update-scale '{text}': expected a number > 0 (1 = the default synthesis)");

    public static GgmlType ParseQuant(string text) =>
        Enum.TryParse<GgmlType>(text, ignoreCase: true, out var t) && Enum.IsDefined(t)
            ? t
            : throw new CliUsageException($"unknown quantization '{text}' (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, Q2_K, Q3_K)");

    public static string Bytes(long b) => b switch
    {
        >= 1L << 30 => (b / (double)(1L << 30)).ToString("0.00", CultureInfo.InvariantCulture) + " GiB",
        >= 1L << 20 => (b / (double)(1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
        >= 1L << 10 => (b / 1024.0).ToString("0.0", CultureInfo.InvariantCulture) + " KiB",
        _ => b.ToString(CultureInfo.InvariantCulture) + " B",
    };

    /// <summary>Synchronous progress: System.Progress posts to the thread pool and would print out of order.</summary>
    private sealed class Progress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}
