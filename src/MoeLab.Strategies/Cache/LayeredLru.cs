using MoeLab.Engine.Telemetry;

namespace MoeLab.Strategies.Cache;

/// <summary>
/// LRU per layer with quotas sized from a profile: a layer whose router spreads its choices over more experts gets
/// more room. A layer's weight is its effective number of experts, exp(entropy) of its request distribution in the
/// profile; quotas are whole experts, split by largest remainder, at least one per layer when the capacity allows.
/// </summary>
public static class LayeredLru
{
    public static readonly StrategyDescriptor Descriptor = CacheCatalog.Describe(
        "layered-lru", "LRU per layer, quotas proportional to each layer's effective number of experts in a profile",
        [new("profile_skip_tokens", "int", "0", "tokens at the start of the profile to ignore (e.g. a prefill block)")],
        (p, ctx, capacity) =>
        {
            var profile = ctx.RequireProfile(p.Policy, null, "needs a profile trace to size per-layer quotas");
            var quotas = Quotas(profile, p.Int("profile_skip_tokens", 0, min: 0), capacity / Math.Max(1, ctx.ExpertSize));
            return new PerLayerCache(quotas.Select(q => (Engine.Policies.ICachePolicy)new Lru(q * ctx.ExpertSize, ctx.ExpertSize)).ToArray());
        },
        scoped: false);

    /// <summary>Whole-expert quotas per layer summing to <paramref name="experts"/>.</summary>
    public static long[] Quotas(RoutingTrace profile, int skipTokens, long experts)
    {
        var counts = ProfileCounts.PerLayer(profile, skipTokens);
        int layers = counts.Length;
        var weight = new double[layers];
        for (int l = 0; l < layers; l++)
        {
            double total = counts[l].Sum(), entropy = 0;
            foreach (long c in counts[l])
            {
                if (c == 0) continue;
                double q = c / total;
                entropy -= q * Math.Log(q);
            }

            weight[l] = total == 0 ? 1 : Math.Exp(entropy);
        }

        var quotas = new long[layers];
        long floor = experts >= layers ? 1 : 0;
        long rest = experts - floor * layers;
        double sum = weight.Sum();
        var remainders = new (double Remainder, int Layer)[layers];
        long given = 0;
        for (int l = 0; l < layers; l++)
        {
            double share = rest * weight[l] / sum;
            quotas[l] = floor + (long)Math.Floor(share);
            given += (long)Math.Floor(share);
            remainders[l] = (share - Math.Floor(share), l);
        }

        foreach (var (_, l) in remainders.OrderByDescending(r => r.Remainder).ThenBy(r => r.Layer).Take((int)(rest - given))) quotas[l]++;
        return quotas;
    }
}
