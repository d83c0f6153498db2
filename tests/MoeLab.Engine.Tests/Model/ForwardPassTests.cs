using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.Engine.Tests.Model;

/// <summary>The engine's forward pass against the independent double-precision reference, on synthesized models.</summary>
public sealed class ForwardPassTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-fwd-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Synth(string preset, GgmlType quant, int? layers = null)
    {
        string path = Path.Combine(_dir, $"{preset}-{quant}.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, layers, quant, Seed: 7), path);
        return path;
    }

    private static readonly int[] Tokens = [1, 17, 250, 3, 99, 42, 5, 311];

    private static (float[][] Logits, int[][][] Experts) Engine(string path, int threads = 2)
    {
        var observer = new RecordingObserver();
        using var m = MoeModel.Load(path, new ModelOptions { Threads = threads, MaxContext = 64, Observer = observer });
        var logits = Tokens.Select(t => m.Forward(t).ToArray()).ToArray();
        return (logits, observer.ByToken(Tokens.Length, m.Layers));
    }

    [Fact]
    public void F32_logits_match_the_double_precision_reference_within_1e4()
    {
        string path = Synth("tiny-qwen3moe", GgmlType.F32);
        var (reference, routes) = new ReferenceMoe(path).Run(Tokens);
        var (logits, experts) = Engine(path);

        double maxDelta = 0;
        for (int t = 0; t < Tokens.Length; t++)
        {
            for (int v = 0; v < logits[t].Length; v++)
            {
                maxDelta = Math.Max(maxDelta, Math.Abs(logits[t][v] - reference[t][v]));
            }

            for (int l = 0; l < routes[t].Count; l++)
            {
                Assert.Equal(routes[t][l].Experts, experts[t][l]);
            }
        }

        Assert.True(maxDelta <= 1e-4, $"max |Δlogit| = {maxDelta}");
        // Logits must carry signal, or the comparison proves nothing.
        Assert.True(reference.SelectMany(r => r).Max(Math.Abs) > 0.1);
    }

    [Theory]
    [InlineData(GgmlType.F16, 2e-2)]
    [InlineData(GgmlType.BF16, 8e-2)]
    [InlineData(GgmlType.Q8_0, 8e-2)]
    [InlineData(GgmlType.Q4_0, 0.6)]
    [InlineData(GgmlType.Q4_K, 0.6)]
    [InlineData(GgmlType.Q6_K, 0.2)]
    [InlineData(GgmlType.Q4_1, 0.6)]
    [InlineData(GgmlType.Q5_0, 0.6)]
    [InlineData(GgmlType.Q5_1, 0.6)]
    [InlineData(GgmlType.Q5_K, 0.6)]
    public void Quantized_logits_follow_the_reference_on_the_same_weights(GgmlType quant, double tolerance)
    {
        // The reference dequantizes the same stored weights to double, so the only difference left is the engine
        // quantizing activations (Q8_0 / Q8_K, as llama.cpp does) and F16 rounding: bounded by the activation
        // quantization error (~1/127 relative per dot for 8-bit activations), grown through 2-4 layers. Q4_1/Q5_0/
        // Q5_1/Q5_K meet the same 8-bit activations as Q4_0/Q4_K (Q4_1/Q5_1 also the fp16 block sum s), so they get
        // the same bound (measured 2026-11-25: Q4_1 0.05, Q5_0 0.08, Q5_1 0.32, Q5_K 0.10).
        string path = Synth("small-qwen3moe", quant, layers: 2);
        var (reference, _) = new ReferenceMoe(path).Run(Tokens[..4]);
        using var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 16 });
        double maxDelta = 0, maxAbs = 0;
        for (int t = 0; t < 4; t++)
        {
            var logits = m.Forward(Tokens[t]);
            for (int v = 0; v < logits.Length; v++)
            {
                maxDelta = Math.Max(maxDelta, Math.Abs(logits[v] - reference[t][v]));
                maxAbs = Math.Max(maxAbs, Math.Abs(reference[t][v]));
            }
        }

        Assert.True(maxDelta <= tolerance, $"{quant}: max |Δlogit| = {maxDelta} (logit scale {maxAbs})");
    }

    [Fact]
    public void Thread_count_does_not_change_logits()
    {
        string path = Synth("tiny-qwen3moe", GgmlType.F32);
        var one = Engine(path, threads: 1).Logits;
        var two = Engine(path, threads: 2).Logits;
        for (int t = 0; t < one.Length; t++)
        {
            Assert.Equal(one[t], two[t]);
        }
    }

    [Fact]
    public void Reset_and_reevaluate_gives_identical_logits()
    {
        string path = Synth("tiny-qwen3moe", GgmlType.F32);
        using var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 16 });
        var first = Tokens.Select(t => m.Forward(t).ToArray()).ToArray();
        m.Reset();
        var again = Tokens.Select(t => m.Forward(t).ToArray()).ToArray();
        Assert.Equal(first.Last(), again.Last());
    }

    internal sealed class RecordingObserver : IRoutingObserver
    {
        private readonly List<(int Token, int Layer, int[] Experts)> _seen = [];

        public void Observe(in MoeLab.Engine.Policies.RoutingObservation o) => _seen.Add((o.Token, o.Layer, o.Experts.ToArray()));

        public int[][][] ByToken(int tokens, int layers)
        {
            var r = new int[tokens][][];
            for (int t = 0; t < tokens; t++)
            {
                r[t] = new int[layers][];
            }

            foreach (var (t, l, e) in _seen)
            {
                r[t][l] = e;
            }

            return r;
        }
    }
}
