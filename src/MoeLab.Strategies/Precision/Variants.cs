using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Precision;

internal static class Variants
{
    /// <summary>The stored variant whose bits per weight are closest to <paramref name="bits"/> (ties: fewer bits).</summary>
    public static int Closest(ReadOnlySpan<ExpertVariant> variants, double bits)
    {
        int best = 0;
        for (int i = 1; i < variants.Length; i++)
        {
            double d = Math.Abs(variants[i].BitsPerWeight - bits), b = Math.Abs(variants[best].BitsPerWeight - bits);
            if (d < b || (d == b && variants[i].BitsPerWeight < variants[best].BitsPerWeight)) best = i;
        }

        return variants.IsEmpty ? 0 : variants[best].Index;
    }
}

/// <summary>Computes every expert at the precision the model file stores it in.</summary>
public sealed class Native : IPrecisionPolicy
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Precision, "native", "every expert as stored in the model file", [], (_, _) => new Native());

    public string Name => "native";

    public PrecisionChoice Choose(ExpertKey key, float routerWeight, int cachedVariant, ReadOnlySpan<ExpertVariant> variants) => new(0, 0);
}

/// <summary>Computes and caches every expert from the stored copy closest to <c>bits</c> bits per weight.</summary>
public sealed class UniformBits(double bits) : IPrecisionPolicy
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Precision, "uniform-bits", "all experts from the stored copy closest to a bit width",
        [new("bits", "double", "4", "bits per weight wanted; the closest stored variant is used")],
        (p, _) => new UniformBits(p.Double("bits", 4, min: 1, max: 32)));

    public string Name => "uniform-bits";

    public PrecisionChoice Choose(ExpertKey key, float routerWeight, int cachedVariant, ReadOnlySpan<ExpertVariant> variants)
    {
        int v = Variants.Closest(variants, bits);
        return new(v, v);
    }
}

/// <summary>
/// HOBBIT-style (Tang et al. 2024): a cached expert is computed at native precision; a miss of an expert whose
/// router weight is below <c>high_weight</c> reads the low-bit copy and is not cached, so the cache holds only native
/// experts; a miss of an important expert reads and caches the native copy.
/// </summary>
public sealed class LowBitOnMiss(double bits, double highWeight) : IPrecisionPolicy
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Precision, "low-bit-on-miss", "misses of low-weight experts read a low-bit copy (not cached); the cache keeps native experts",
        [
            new("bits", "double", "4", "bits per weight of the copy a miss reads"),
            new("high_weight", "double", "0.25", "router weight at or above which a miss still reads (and caches) the native copy"),
        ],
        (p, _) => new LowBitOnMiss(p.Double("bits", 4, min: 1, max: 32), p.Double("high_weight", 0.25, min: 0, max: 1)));

    public string Name => "low-bit-on-miss";

    public PrecisionChoice Choose(ExpertKey key, float routerWeight, int cachedVariant, ReadOnlySpan<ExpertVariant> variants)
    {
        if (cachedVariant >= 0) return new(cachedVariant, cachedVariant);
        if (routerWeight >= highWeight) return new(0, 0);
        return new(Variants.Closest(variants, bits), -1);
    }
}

/// <summary>
/// Hot experts (the most requested <c>hot_fraction</c> of each layer in a profile) at native precision, the rest from
/// the copy closest to <c>cold_bits</c>.
/// </summary>
public sealed class PerExpertBits : IPrecisionPolicy
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Precision, "per-expert-bits", "hot experts (from a profile) native, cold experts low-bit",
        [
            new("hot_fraction", "double", "0.25", "share of each layer's experts, most requested first, kept native"),
            new("cold_bits", "double", "4", "bits per weight for the other experts"),
        ],
        (p, ctx) => new PerExpertBits(
            ctx.RequireProfile(p.Policy, null, "needs a profile trace to tell hot experts from cold"),
            p.Double("hot_fraction", 0.25, min: 0, max: 1), p.Double("cold_bits", 4, min: 1, max: 32)));

    private readonly bool[] _hot; // [layer * experts + expert]
    private readonly int _experts;
    private readonly double _coldBits;

    public PerExpertBits(Engine.Telemetry.RoutingTrace profile, double hotFraction, double coldBits)
    {
        _experts = profile.ExpertsPerLayer;
        _coldBits = coldBits;
        _hot = new bool[profile.Layers * _experts];
        var counts = Cache.ProfileCounts.PerLayer(profile, 0);
        int hotPerLayer = (int)Math.Round(hotFraction * _experts);
        for (int l = 0; l < counts.Length; l++)
        {
            var order = Enumerable.Range(0, _experts).OrderByDescending(e => counts[l][e]).ThenBy(e => e).Take(hotPerLayer);
            foreach (int e in order) _hot[l * _experts + e] = true;
        }
    }

    public string Name => "per-expert-bits";

    public bool IsHot(ExpertKey key) => (uint)key.Expert < (uint)_experts && key.Layer * _experts + key.Expert < _hot.Length && _hot[key.Layer * _experts + key.Expert];

    public PrecisionChoice Choose(ExpertKey key, float routerWeight, int cachedVariant, ReadOnlySpan<ExpertVariant> variants)
    {
        int v = IsHot(key) ? 0 : Variants.Closest(variants, _coldBits);
        return new(v, v);
    }
}
