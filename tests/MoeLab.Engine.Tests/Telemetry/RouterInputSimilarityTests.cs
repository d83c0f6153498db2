using MoeLab.Engine.Model;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Engine.Tests.Telemetry;

public sealed class RouterInputSimilarityTests
{
    [Fact]
    public void Averages_the_cosines_of_consecutive_layers_within_each_token_against_a_scalar_reference()
    {
        var rng = new Random(5);
        float[][] token0 = [.. Enumerable.Range(0, 4).Select(_ => Vector(rng, 37))];
        float[][] token1 = [.. Enumerable.Range(0, 3).Select(_ => Vector(rng, 37))];
        var s = new RouterInputSimilarity(37);
        double expected = 0;
        foreach (var layers in new[] { token0, token1 })
        {
            s.BeginToken();
            for (int l = 0; l < layers.Length; l++)
            {
                s.Add(layers[l]);
                if (l > 0) expected += Cosine(layers[l - 1], layers[l]);
            }
        }

        Assert.Equal(3 + 2, s.Pairs); // no pair across the token boundary
        Assert.Equal(expected / 5, s.Mean, 5);
        s.Clear();
        Assert.True(double.IsNaN(s.Mean));
    }

    [Fact]
    public void Identical_inputs_give_1_and_opposite_inputs_give_minus_1()
    {
        var s = new RouterInputSimilarity(3);
        s.BeginToken();
        s.Add([1f, 2f, 3f]);
        s.Add([2f, 4f, 6f]);
        Assert.Equal(1, s.Mean, 5);
        s.Clear();
        s.BeginToken();
        s.Add([1f, 2f, 3f]);
        s.Add([-1f, -2f, -3f]);
        Assert.Equal(-1, s.Mean, 5);
    }

    [Fact]
    public void Decoding_with_it_attached_allocates_nothing_per_token()
    {
        string dir = Directory.CreateTempSubdirectory("moelab-similarity-").FullName;
        try
        {
            string path = Path.Combine(dir, "t.gguf");
            ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!), path);
            using var model = MoeModel.Load(path, new ModelOptions { Threads = 1, MaxContext = 512 });
            model.RouterInputs = new RouterInputSimilarity(model.Config.Hidden);
            double perToken = AllocationProbe.BytesPerCall(() =>
            {
                if (model.Position >= model.MaxContext - 1) model.Reset();
                model.Forward(1);
            }, calls: 100);
            Assert.True(perToken < 24, $"{perToken:F1} bytes allocated per token");
            Assert.True(model.RouterInputs.Pairs > 0);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static float[] Vector(Random rng, int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1))];

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }

        return dot / Math.Sqrt(na * nb);
    }
}
