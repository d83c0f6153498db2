using System.Globalization;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Traces;

/// <summary>
/// Parameters of the synthetic routing-trace generator. Every one is written into the trace header under
/// <c>synth.&lt;name&gt;</c>, so a trace says how it was made.
/// </summary>
public sealed record SyntheticTraceOptions
{
    /// <summary>MoE layers per token.</summary>
    public int Layers { get; init; } = 32;

    /// <summary>Routed experts per layer.</summary>
    public int Experts { get; init; } = 64;

    /// <summary>Experts the router picks per layer and token (top-k); distinct within a step.</summary>
    public int ExpertsPerToken { get; init; } = 4;

    public int Tokens { get; init; } = 1000;

    /// <summary>
    /// Zipf exponent s of each layer's expert popularity: a fresh draw picks the expert of popularity rank r with
    /// probability ∝ 1/r^s. 0 = uniform; ~0.5–1.2 resembles measured MoE routers. Each layer ranks its experts in
    /// its own random order, so hot experts differ between layers.
    /// </summary>
    public double ZipfExponent { get; init; } = 0.8;

    /// <summary>
    /// Temporal reuse: probability that a slot repeats the expert in the same slot of the previous token at the same
    /// layer (token-to-token locality, what makes LRU work).
    /// </summary>
    public double ReuseProbability { get; init; } = 0.3;

    /// <summary>
    /// Cross-layer correlation: probability that a slot takes the image of the same slot's expert at the previous
    /// layer under a fixed random per-layer mapping (what co-activation / transition prefetchers learn).
    /// ReuseProbability + CrossLayerCorrelation must not exceed 1; the rest of the slots are fresh Zipf draws.
    /// </summary>
    public double CrossLayerCorrelation { get; init; } = 0.2;

    /// <summary>Record router weights (a softmax over k random logits, best first).</summary>
    public bool Weights { get; init; } = true;

    public int Seed { get; init; } = 42;

    /// <summary>Model name for the header (e.g. a ModelPreset the shape copies).</summary>
    public string? Model { get; init; }

    public void Validate()
    {
        if (Layers <= 0) throw new ArgumentException($"synth: layers must be positive, not {Layers}");
        if (Experts <= 0 || Experts > 65536) throw new ArgumentException($"synth: experts must be in 1..65536, not {Experts}");
        if (ExpertsPerToken <= 0 || ExpertsPerToken > Experts) throw new ArgumentException($"synth: k must be in 1..{Experts}, not {ExpertsPerToken}");
        if (Tokens < 0) throw new ArgumentException($"synth: tokens must not be negative, not {Tokens}");
        if (ZipfExponent < 0 || double.IsNaN(ZipfExponent)) throw new ArgumentException($"synth: zipf exponent must be ≥ 0, not {ZipfExponent}");
        if (ReuseProbability is < 0 or > 1 || CrossLayerCorrelation is < 0 or > 1 || ReuseProbability + CrossLayerCorrelation > 1 + 1e-12)
            throw new ArgumentException($"synth: reuse ({ReuseProbability}) and cross-layer correlation ({CrossLayerCorrelation}) are probabilities summing to at most 1");
    }
}

/// <summary>Generates a routing trace with controlled popularity skew, temporal reuse and cross-layer correlation.</summary>
public static class SyntheticTrace
{
    public static RoutingTrace Generate(SyntheticTraceOptions o)
    {
        o.Validate();
        var rng = new Random(o.Seed);
        int L = o.Layers, E = o.Experts, k = o.ExpertsPerToken;

        // Popularity: cdf over ranks (shared shape), rank → expert permutation per layer.
        var cdf = new double[E];
        double sum = 0;
        for (int r = 0; r < E; r++) cdf[r] = sum += 1.0 / Math.Pow(r + 1, o.ZipfExponent);
        for (int r = 0; r < E; r++) cdf[r] /= sum;
        var rankToExpert = new int[L][];
        var crossMap = new int[L][];
        for (int l = 0; l < L; l++)
        {
            rankToExpert[l] = Permutation(rng, E);
            crossMap[l] = Permutation(rng, E);
        }

        var b = new RoutingTraceBuilder(L, E, o.Weights);
        var prev = new int[L * k];
        var cur = new int[L * k];
        var logits = new float[k];
        var weights = new float[k];
        for (int t = 0; t < o.Tokens; t++)
        {
            for (int l = 0; l < L; l++)
            {
                var step = cur.AsSpan(l * k, k);
                for (int j = 0; j < k; j++)
                {
                    double u = rng.NextDouble();
                    int candidate = -1;
                    if (t > 0 && u < o.ReuseProbability) candidate = prev[l * k + j];
                    else if (l > 0 && u < o.ReuseProbability + o.CrossLayerCorrelation) candidate = crossMap[l][cur[(l - 1) * k + j]];
                    if (candidate < 0 || step[..j].Contains(candidate)) candidate = FreshDraw(rng, cdf, rankToExpert[l], step[..j]);
                    step[j] = candidate;
                }

                if (o.Weights)
                {
                    // Softmax of k random logits, best first: gating weights as a top-k router normalizes them.
                    float max = float.NegativeInfinity, z = 0;
                    for (int j = 0; j < k; j++) max = Math.Max(max, logits[j] = (float)(rng.NextDouble() * 3));
                    for (int j = 0; j < k; j++) z += weights[j] = MathF.Exp(logits[j] - max);
                    for (int j = 0; j < k; j++) weights[j] /= z;
                    weights.AsSpan().Sort((x, y) => y.CompareTo(x));
                }

                b.AddStep(step, o.Weights ? weights : default);
            }

            (prev, cur) = (cur, prev);
        }

        var inv = CultureInfo.InvariantCulture;
        b.Header["source"] = "synth";
        if (o.Model is not null) b.Header["model"] = o.Model;
        b.Header["synth.layers"] = L.ToString(inv);
        b.Header["synth.experts"] = E.ToString(inv);
        b.Header["synth.k"] = k.ToString(inv);
        b.Header["synth.tokens"] = o.Tokens.ToString(inv);
        b.Header["synth.zipf_exponent"] = o.ZipfExponent.ToString("R", inv);
        b.Header["synth.reuse_probability"] = o.ReuseProbability.ToString("R", inv);
        b.Header["synth.cross_layer_correlation"] = o.CrossLayerCorrelation.ToString("R", inv);
        b.Header["synth.weights"] = o.Weights ? "true" : "false";
        b.Header["synth.seed"] = o.Seed.ToString(inv);
        return b.Build();
    }

    private static int FreshDraw(Random rng, double[] cdf, int[] rankToExpert, ReadOnlySpan<int> taken)
    {
        for (int attempt = 0; attempt < 64; attempt++)
        {
            int rank = Array.BinarySearch(cdf, rng.NextDouble());
            if (rank < 0) rank = ~rank;
            int e = rankToExpert[Math.Min(rank, cdf.Length - 1)];
            if (!taken.Contains(e)) return e;
        }

        // Extremely skewed popularity: take the most popular expert not yet chosen.
        foreach (int e in rankToExpert)
        {
            if (!taken.Contains(e)) return e;
        }

        throw new InvalidOperationException("k exceeds the number of experts");
    }

    private static int[] Permutation(Random rng, int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        rng.Shuffle(p);
        return p;
    }
}
