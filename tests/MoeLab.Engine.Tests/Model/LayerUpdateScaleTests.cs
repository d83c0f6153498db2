using System.Security.Cryptography;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Engine.Tests.Model;

/// <summary><see cref="SynthOptions.LayerUpdateScale"/>: damped block updates, recorded in the file, default unchanged.</summary>
public sealed class LayerUpdateScaleTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-update-scale-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>SHA-256 of the files the synthesizer wrote before the option existed (main at dd61a98, default options, seed 1).</summary>
    [Theory]
    [InlineData("tiny-qwen3moe", "688c35e163ab061f9473f9c70965021537efeda08eba4417eda0805e7a6287ad")]
    [InlineData("tiny-qwen35moe", "f7640604da8166cacced06342139d8844edcab865c6a76f9fdbc0a710b1ca507")]
    [InlineData("tiny-mixtral", "88ea08ae7e02d10fb5657f527e2268680380cf6fcf99555f2e23480e2fa23010")]
    public void At_scale_1_the_file_is_byte_identical_to_the_synthesis_before_the_option(string preset, string sha256)
    {
        var p = ModelPreset.Find(preset)!;
        string byDefault = Synth(new SynthOptions(p), "default.gguf");
        string explicitOne = Synth(new SynthOptions(p) { LayerUpdateScale = 1f }, "one.gguf");
        Assert.Equal(sha256, Sha256(byDefault));
        Assert.Equal(sha256, Sha256(explicitOne));
        Assert.False(GgufFile.Open(byDefault).Has(SynthOptions.LayerUpdateScaleKey));
    }

    [Fact]
    public void The_scale_is_recorded_in_the_metadata_and_the_name_and_scales_only_the_output_projections()
    {
        var p = ModelPreset.Find("tiny-qwen35moe")!;
        var plain = GgufFile.Open(Synth(new SynthOptions(p), "plain.gguf"));
        var damped = GgufFile.Open(Synth(new SynthOptions(p) { LayerUpdateScale = 0.25f }, "damped.gguf"));
        Assert.Equal(0.25, damped.GetDouble(SynthOptions.LayerUpdateScaleKey), 6);
        Assert.Contains("layer update scale 0.25", damped.GetStringOrNull("general.name"));

        // Same seeds, so a scaled tensor is the plain one times 0.25 and every other tensor is unchanged.
        foreach (var t in plain.Tensors)
        {
            Assert.Equal(GgmlType.F32, t.Type);
            float[] a = Values(plain, t.Name), b = Values(damped, t.Name);
            bool output = t.Name.EndsWith("attn_output.weight", StringComparison.Ordinal) || t.Name.EndsWith("ssm_out.weight", StringComparison.Ordinal)
                          || t.Name.EndsWith("ffn_down_exps.weight", StringComparison.Ordinal) || t.Name.EndsWith("ffn_down_shexp.weight", StringComparison.Ordinal);
            for (int i = 0; i < a.Length; i++)
            {
                Assert.Equal(output ? a[i] * 0.25f : a[i], b[i], 1e-6f);
            }
        }

        Assert.Contains(plain.Tensors, t => t.Name.EndsWith("ssm_out.weight", StringComparison.Ordinal));
        Assert.Contains(plain.Tensors, t => t.Name.EndsWith("ffn_down_shexp.weight", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(-0.5f)]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    public void A_scale_that_is_not_a_finite_positive_number_is_refused(float scale)
    {
        var p = ModelPreset.Find("tiny-qwen3moe")!;
        string path = Path.Combine(_dir, "bad.gguf");
        var e = Assert.Throws<ArgumentException>(() => ModelSynthesizer.Write(new SynthOptions(p) { LayerUpdateScale = scale }, path));
        Assert.Contains("layer update scale", e.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Damped_updates_make_consecutive_router_inputs_more_similar_and_next_gate_guess_better()
    {
        // The same shape and seed at two scales: consecutive router inputs closer together, and layer l+1's router on
        // layer l's hidden state (next-gate) picking more of the experts layer l+1 then really picks.
        var p = ModelPreset.Find("tiny-qwen3moe")! with { Layers = 8 };
        var (cosine1, accuracy1) = Measure(Synth(new SynthOptions(p), "s1.gguf"));
        var (cosineLow, accuracyLow) = Measure(Synth(new SynthOptions(p) { LayerUpdateScale = 0.1f }, "s01.gguf"));
        Assert.InRange(cosine1, -1, 0.97);
        Assert.True(cosineLow > cosine1 + 0.1, $"cosine at scale 0.1 {cosineLow:F3}, at 1 {cosine1:F3}");
        Assert.True(accuracyLow > accuracy1 + 0.1, $"next-gate accuracy at scale 0.1 {accuracyLow:P1}, at 1 {accuracy1:P1}");
    }

    /// <summary>Mean consecutive router-input cosine and distance-1 next-gate accuracy over a 24-token greedy pass.</summary>
    private static (double Cosine, double Accuracy) Measure(string path)
    {
        var file = GgufFile.Open(path);
        var config = ModelConfig.FromGguf(file);
        var recorder = new RoutingTraceRecorder(config.Layers, config.Experts) { PredictTop = config.ExpertsUsed };
        using var model = MoeModel.Load(file, new ModelOptions { Threads = 1, MaxContext = 32, Observer = recorder });
        recorder.NextGate = model;
        var similarity = new RouterInputSimilarity(config.Hidden);
        model.RouterInputs = similarity;
        int token = 1;
        for (int t = 0; t < 24; t++)
        {
            token = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(model.Forward(token));
        }

        var actual = recorder.Build();
        var guessed = recorder.BuildPredictions()!;
        int hits = 0, guesses = 0;
        for (int t = 0; t < actual.Tokens; t++)
        {
            for (int l = 1; l < actual.Layers; l++)
            {
                foreach (int e in guessed.Experts(t, l))
                {
                    guesses++;
                    if (actual.Experts(t, l).Contains(e)) hits++;
                }
            }
        }

        Assert.Equal(24L * (config.Layers - 1), similarity.Pairs);
        return (similarity.Mean, hits / (double)guesses);
    }

    private string Synth(SynthOptions o, string name)
    {
        string path = Path.Combine(_dir, name);
        ModelSynthesizer.Write(o, path);
        return path;
    }

    private static float[] Values(GgufFile f, string tensor)
    {
        var t = f.Tensor(tensor);
        var bytes = new byte[t.ElementCount * sizeof(float)];
        using var s = File.OpenRead(f.Path);
        s.Position = t.AbsoluteOffset;
        s.ReadExactly(bytes);
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray();
    }

    private static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }
}
