using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Routing;

/// <summary>Keeps the model's own choice.</summary>
public sealed class Unchanged : IRoutingPolicy
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Routing, "unchanged", "the model's own top-k choice (exact)", [], (_, _) => new Unchanged());

    public string Name => "unchanged";

    public int Route(int layer, ReadOnlySpan<float> probabilities, Span<int> experts, Span<float> weights, int count, IExpertResidency residency) => count;
}

internal static class Renormalize
{
    /// <summary>Scales the kept weights so they sum to what all <paramref name="originalSum"/> summed to.</summary>
    public static void To(Span<float> weights, int kept, float originalSum)
    {
        float sum = 0;
        for (int i = 0; i < kept; i++) sum += weights[i];
        if (sum <= 0) return;
        float scale = originalSum / sum;
        for (int i = 0; i < kept; i++) weights[i] *= scale;
    }

    public static float Sum(ReadOnlySpan<float> weights)
    {
        float sum = 0;
        foreach (float w in weights) sum += w;
        return sum;
    }
}

/// <summary>Uses only the best k experts of the model's top-k, weights rescaled to the original total.</summary>
public sealed class TopKReduce(int k) : IRoutingPolicy
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Routing, "top-k-reduce", "use the best k' < k experts, renormalized (changes the output)",
        [new("k", "int", "1", "experts kept per token and layer")],
        (p, _) => new TopKReduce(p.Int("k", 1, min: 1)));

    public string Name => "top-k-reduce";

    public int Route(int layer, ReadOnlySpan<float> probabilities, Span<int> experts, Span<float> weights, int count, IExpertResidency residency)
    {
        if (count <= k) return count;
        Renormalize.To(weights, k, Renormalize.Sum(weights[..count]));
        return k;
    }
}

/// <summary>
/// Drops experts whose router probability is below <c>threshold</c>, and those after the cumulative probability
/// reached <c>top_p</c>; keeps at least <c>min_k</c>. Weights are rescaled to the original total.
/// </summary>
public sealed class AdaptiveK(double threshold, double topP, int minK) : IRoutingPolicy
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Routing, "adaptive-k", "drop experts below a probability threshold or past a cumulative probability (changes the output)",
        [
            new("threshold", "double", "0", "drop an expert whose router probability is below this"),
            new("top_p", "double", "1", "drop experts after the kept ones' cumulative router probability reached this"),
            new("min_k", "int", "1", "always keep at least this many"),
        ],
        (p, _) => new AdaptiveK(p.Double("threshold", 0, min: 0, max: 1), p.Double("top_p", 1, min: 0, max: 1), p.Int("min_k", 1, min: 1)));

    public string Name => "adaptive-k";

    public int Route(int layer, ReadOnlySpan<float> probabilities, Span<int> experts, Span<float> weights, int count, IExpertResidency residency)
    {
        float total = Renormalize.Sum(weights[..count]);
        double cumulative = 0;
        int kept = 0;
        for (int i = 0; i < count; i++)
        {
            double p = probabilities[experts[i]];
            if (kept >= minK && (p < threshold || cumulative >= topP)) break; // best first: the rest are smaller
            cumulative += p;
            kept++;
        }

        Renormalize.To(weights, kept, total);
        return kept;
    }
}

/// <summary>
/// Replaces a chosen expert that is not in RAM by a resident one whose router probability is within <c>margin</c> of
/// it (the most probable such expert), so a read is saved at a small cost in fidelity. Weights are recomputed from
/// the router probabilities of the final set and rescaled to the original total; the set is kept best first.
/// </summary>
public sealed class CacheAware(double margin) : IRoutingPolicy
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Routing, "cache-aware", "prefer a cached expert whose router probability is within a margin (changes the output)",
        [new("margin", "double", "0.05", "largest router-probability shortfall accepted for a resident substitute")],
        (p, _) => new CacheAware(p.Double("margin", 0.05, min: 0, max: 1)));

    public string Name => "cache-aware";

    public int Route(int layer, ReadOnlySpan<float> probabilities, Span<int> experts, Span<float> weights, int count, IExpertResidency residency)
    {
        float total = Renormalize.Sum(weights[..count]);
        bool changed = false;
        for (int i = 0; i < count; i++)
        {
            if (residency.IsResident(new ExpertKey(layer, experts[i]))) continue;
            float floor = probabilities[experts[i]] - (float)margin;
            int best = -1;
            for (int e = 0; e < probabilities.Length; e++)
            {
                if (probabilities[e] < floor || (best >= 0 && probabilities[e] <= probabilities[best])) continue;
                if (experts[..count].Contains(e) || !residency.IsResident(new ExpertKey(layer, e))) continue;
                best = e;
            }

            if (best < 0) continue;
            experts[i] = best;
            changed = true;
        }

        if (!changed) return count;
        // Best first again, weights from the router's probabilities, same total as the model's own weights.
        for (int i = 1; i < count; i++)
        {
            for (int j = i; j > 0 && probabilities[experts[j]] > probabilities[experts[j - 1]]; j--) (experts[j], experts[j - 1]) = (experts[j - 1], experts[j]);
        }

        for (int i = 0; i < count; i++) weights[i] = probabilities[experts[i]];
        Renormalize.To(weights, count, total);
        return count;
    }
}
