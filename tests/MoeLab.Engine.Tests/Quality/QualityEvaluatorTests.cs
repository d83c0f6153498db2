using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;
using MoeLab.Engine.Quality;

namespace MoeLab.Engine.Tests.Quality;

/// <summary>Teacher-forced quality cost on a tiny synthesized model: exact vs itself, vs a reduced router, and perplexity.</summary>
public sealed class QualityEvaluatorTests : IDisposable
{
    private static readonly int[] Text = [1, 17, 250, 3, 99, 42, 5, 311, 7, 200, 64, 128, 9, 77, 31, 2];

    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-quality-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Synth(string preset = "tiny-qwen3moe")
    {
        string path = Path.Combine(_dir, preset + ".gguf");
        if (!File.Exists(path)) ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, null, GgmlType.F32, Seed: 11), path);
        return path;
    }

    [Fact]
    public void The_exact_model_against_itself_has_zero_kl_full_agreement_and_identical_logits()
    {
        string path = Synth();
        using var exact = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 64 });
        using var again = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 64 });
        var r = QualityEvaluator.Compare(exact, again, Text);
        Assert.Equal(Text.Length - 1, r.Positions);
        Assert.Equal(0, r.MeanKl);
        Assert.Equal(1, r.Top1Agreement);
        Assert.True(r.BitIdentical);
        Assert.Equal(r.ExactPerplexity, r.Perplexity);
    }

    [Theory]
    [InlineData("tiny-qwen3moe")]
    [InlineData("tiny-mixtral")]
    public void Keeping_only_the_top_expert_costs_kl_and_changes_perplexity(string preset)
    {
        string path = Synth(preset);
        using var exact = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 64 });
        using var reduced = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 64, Routing = new KeepTopOne() });
        var r = QualityEvaluator.Compare(exact, reduced, Text);
        Assert.True(r.MeanKl > 1e-6, $"mean KL {r.MeanKl}");
        Assert.True(r.MaxKl >= r.MeanKl);
        Assert.InRange(r.Top1Agreement, 0, 1);
        Assert.Equal(0, r.IdenticalPositions);
        Assert.NotEqual(r.ExactPerplexity, r.Perplexity);
        Assert.True(double.IsFinite(r.Perplexity) && r.Perplexity > 1);
    }

    [Fact]
    public void Perplexity_agrees_with_an_independent_computation_from_the_logits()
    {
        string path = Synth();
        using var model = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 64 });
        var reference = ReferenceLogits.Record(model, Text);

        // Independently: run the model again, and sum −log p(next) with a plain softmax over the float logits.
        model.Reset();
        double nll = 0;
        for (int i = 0; i < Text.Length - 1; i++)
        {
            float[] logits = model.Forward(Text[i]).ToArray();
            double z = logits.Sum(x => Math.Exp(x)); // tiny model logits are O(10): no overflow without the max shift
            nll += -Math.Log(Math.Exp(logits[Text[i + 1]]) / z);
        }

        double expected = Math.Exp(nll / (Text.Length - 1));
        Assert.Equal(expected, reference.Perplexity, 9);
        Assert.InRange(reference.Perplexity, 1, model.Config.Vocab * 100.0);
    }

    [Fact]
    public void A_text_longer_than_the_context_or_too_short_is_refused_with_the_reason()
    {
        using var model = MoeModel.Load(Synth(), new ModelOptions { Threads = 2, MaxContext = 8 });
        var e = Assert.Throws<ArgumentException>(() => ReferenceLogits.Record(model, Text));
        Assert.Contains("context", e.Message);
        Assert.Throws<ArgumentException>(() => ReferenceLogits.Record(model, [5]));
    }

    /// <summary>Top-k reduction to one expert (weight 1), the most lossy reduction.</summary>
    private sealed class KeepTopOne : IRoutingPolicy
    {
        public string Name => "test-keep-top-one";

        public int Route(int layer, ReadOnlySpan<float> probabilities, Span<int> experts, Span<float> weights, int count, IExpertResidency residency)
        {
            int best = 0;
            for (int i = 1; i < count; i++)
            {
                if (weights[i] > weights[best]) best = i;
            }

            experts[0] = experts[best];
            weights[0] = 1f;
            return 1;
        }
    }
}
