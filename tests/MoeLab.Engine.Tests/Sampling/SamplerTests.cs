using MoeLab.Engine.Sampling;

namespace MoeLab.Engine.Tests.Sampling;

public class SamplerTests
{
    private static float[] RandomLogits(int n, int seed)
    {
        var rng = new Random(seed);
        var logits = new float[n];
        for (int i = 0; i < n; i++)
        {
            logits[i] = (float)(rng.NextDouble() * 8 - 4);
        }
        return logits;
    }

    [Fact]
    public void GreedyIsArgMaxWithLowestIndexOnTies()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            float[] logits = RandomLogits(1000, seed);
            int expected = Array.IndexOf(logits, logits.Max());
            var greedy = new Sampler(logits.Length, SamplerOptions.Greedy);
            Assert.Equal(expected, greedy.Sample(logits));
        }
        Assert.Equal(1, Sampler.ArgMax([0f, 3f, float.NaN, 3f]));
    }

    [Fact]
    public void TopKOfOneIsGreedyAtAnyTemperature()
    {
        float[] logits = RandomLogits(5000, 3);
        var sampler = new Sampler(logits.Length, new SamplerOptions { Temperature = 5f, TopK = 1, TopP = 1f, Seed = 9 });
        int expected = Sampler.ArgMax(logits);
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal(expected, sampler.Sample(logits));
        }
    }

    [Fact]
    public void SameSeedSameTokensDifferentSeedDifferentTokens()
    {
        float[] logits = RandomLogits(2000, 5);
        var options = new SamplerOptions { Temperature = 1.2f, TopK = 200, TopP = 0.9f, Seed = 42 };
        int[] Run(SamplerOptions o)
        {
            var s = new Sampler(logits.Length, o);
            return Enumerable.Range(0, 200).Select(_ => s.Sample(logits)).ToArray();
        }
        Assert.Equal(Run(options), Run(options));
        Assert.NotEqual(Run(options), Run(options with { Seed = 43 }));
    }

    [Fact]
    public void GeneratorIsTheDocumentedXoshiro256StarStar()
    {
        // Reference: xoshiro256** with state {1, 2, 3, 4} (Vigna's C code) gives 11520, 0, 1509978240, 1215971899390074240.
        var rng = Xoshiro256StarStar.FromState(1, 2, 3, 4);
        Assert.Equal(11520UL, rng.NextUInt64());
        Assert.Equal(0UL, rng.NextUInt64());
        Assert.Equal(1509978240UL, rng.NextUInt64());
        Assert.Equal(1215971899390074240UL, rng.NextUInt64());
    }

    [Fact]
    public void TemperatureSamplingFollowsSoftmax()
    {
        float[] logits = [1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -3.0f, 1.5f, 0.7f];
        const float temperature = 0.7f;
        var sampler = new Sampler(logits.Length, new SamplerOptions { Temperature = temperature, TopK = 0, TopP = 1f, Seed = 2026 });
        const int draws = 200_000;
        var counts = new int[logits.Length];
        for (int i = 0; i < draws; i++)
        {
            counts[sampler.Sample(logits)]++;
        }
        double max = logits.Max();
        double[] w = logits.Select(l => Math.Exp((l - max) / temperature)).ToArray();
        double sum = w.Sum();
        double chi2 = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            double expected = draws * w[i] / sum;
            chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
        }
        // 7 degrees of freedom: P(chi2 > 24.3) = 0.001; 40 is generous for a fixed seed yet fails any real bias.
        Assert.True(chi2 < 40, $"chi-square {chi2:F1} over 7 dof");
    }

    [Fact]
    public void TopKAndTopPKeepOnlyTheBestTokens()
    {
        float[] logits = RandomLogits(1000, 11);
        int[] order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ToArray();
        var topK = new HashSet<int>(order.Take(10));
        var k = new Sampler(logits.Length, new SamplerOptions { Temperature = 3f, TopK = 10, TopP = 1f, Seed = 1 });
        for (int i = 0; i < 500; i++)
        {
            Assert.Contains(k.Sample(logits), topK);
        }

        // nucleus: smallest prefix of the sorted softmax whose mass reaches p
        const float p = 0.3f;
        double max = logits.Max();
        double[] w = order.Select(i => Math.Exp(logits[i] - max)).ToArray();
        double total = w.Sum();
        int keep = 0;
        for (double acc = 0; acc < p * total; keep++)
        {
            acc += w[keep];
        }
        var nucleus = new HashSet<int>(order.Take(keep));
        var sampler = new Sampler(logits.Length, new SamplerOptions { Temperature = 1f, TopK = 0, TopP = p, Seed = 1 });
        var seen = new HashSet<int>();
        for (int i = 0; i < 500; i++)
        {
            int t = sampler.Sample(logits);
            Assert.Contains(t, nucleus);
            seen.Add(t);
        }
        Assert.True(seen.Count > 1);
    }

    [Fact]
    public void SampleAllocatesNothing()
    {
        float[] logits = RandomLogits(32_000, 8);
        foreach (var options in new[]
        {
            SamplerOptions.Greedy,
            new SamplerOptions { Temperature = 0.8f, TopK = 40, TopP = 0.95f, Seed = 3 },
            new SamplerOptions { Temperature = 1f, TopK = 0, TopP = 0.9f, Seed = 3 },
            new SamplerOptions { Temperature = 1f, TopK = 0, TopP = 1f, Seed = 3 },
        })
        {
            var sampler = new Sampler(logits.Length, options);
            double perCall = AllocationProbe.BytesPerCall(() => sampler.Sample(logits), calls: 200);
            Assert.True(perCall < AllocationProbe.NoPerCallAllocation, $"{perCall} bytes per Sample call");
        }
    }

    [Fact]
    public void RejectsBadOptionsAndLogits()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(10, new SamplerOptions { Temperature = -1f }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(10, new SamplerOptions { TopP = 0f }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sampler(10, new SamplerOptions { TopK = -2 }));
        var s = new Sampler(4, new SamplerOptions { Seed = 1 });
        Assert.Throws<ArgumentException>(() => s.Sample(new float[5]));
        Assert.Throws<InvalidOperationException>(() => s.Sample([float.NaN, float.NaN, float.NaN, float.NaN]));
    }
}
