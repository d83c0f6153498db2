namespace MoeLab.Engine.Policies;

/// <summary>One stored precision of the routed experts (the native tensors, or a copy in a side file).</summary>
public readonly record struct ExpertVariant(int Index, string TypeName, double BitsPerWeight, long ExpertBytes);

/// <summary>
/// Which stored variant to compute an expert with, and which to keep in the cache.
/// <c>CacheVariant = -1</c> means do not cache this read.
/// </summary>
public readonly record struct PrecisionChoice(int ComputeVariant, int CacheVariant);

/// <summary>Chooses among the stored precisions of an expert (native, uniform low-bit, low-bit-on-miss, per-expert).</summary>
public interface IPrecisionPolicy
{
    string Name { get; }

    /// <summary>
    /// Chooses for one routed expert. <paramref name="cachedVariant"/> is the variant resident in the cache, or -1 on a miss.
    /// Variant 0 is the model file's own (native) precision.
    /// </summary>
    PrecisionChoice Choose(ExpertKey key, float routerWeight, int cachedVariant, ReadOnlySpan<ExpertVariant> variants);
}
