using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Traces;

/// <summary>
/// Summary statistics of a routing trace, to compare a synthetic trace with a real one: size, popularity skew,
/// token-to-token reuse and cross-layer repetition.
/// </summary>
public sealed record TraceStats(
    int Layers,
    int ExpertsPerLayer,
    int Tokens,
    long Requests,
    int DistinctExperts,
    double MeanExpertsPerStep,
    double TopTenPercentShare,
    double TokenReuse,
    double MeanLayerEntropyBits)
{
    /// <summary>Computes the statistics over tokens from <paramref name="skipTokens"/> on.</summary>
    public static TraceStats Of(RoutingTrace trace, int skipTokens = 0)
    {
        int L = trace.Layers, E = trace.ExpertsPerLayer;
        var counts = new long[L * E];
        long requests = 0, reused = 0, comparable = 0;
        int first = Math.Min(skipTokens, trace.Tokens);
        for (int t = first; t < trace.Tokens; t++)
        {
            for (int l = 0; l < L; l++)
            {
                var ids = trace.Experts(t, l);
                foreach (int e in ids) counts[l * E + e]++;
                requests += ids.Length;
                if (t > first)
                {
                    var prev = trace.Experts(t - 1, l);
                    foreach (int e in ids)
                    {
                        comparable++;
                        if (prev.Contains(e)) reused++;
                    }
                }
            }
        }

        int distinct = counts.Count(c => c > 0);
        var sorted = counts.OrderByDescending(c => c).ToArray();
        int top = Math.Max(1, sorted.Length / 10);
        double topShare = requests == 0 ? 0 : sorted.Take(top).Sum() / (double)requests;
        double entropy = 0;
        for (int l = 0; l < L; l++)
        {
            long n = 0;
            for (int e = 0; e < E; e++) n += counts[l * E + e];
            if (n == 0) continue;
            double h = 0;
            for (int e = 0; e < E; e++)
            {
                double p = counts[l * E + e] / (double)n;
                if (p > 0) h -= p * Math.Log2(p);
            }

            entropy += h / L;
        }

        int tokens = trace.Tokens - first;
        return new TraceStats(L, E, tokens, requests, distinct, tokens == 0 ? 0 : requests / (double)(tokens * L), topShare,
            comparable == 0 ? 0 : reused / (double)comparable, entropy);
    }
}
