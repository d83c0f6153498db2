namespace MoeLab.Engine.Policies;

/// <summary>One routed expert of one layer: the unit every cache, prefetcher, trace and I/O request speaks of.</summary>
public readonly record struct ExpertKey(int Layer, int Expert)
{
    /// <summary>A single 64-bit value, for hash maps and sorted arrays in hot loops.</summary>
    public long Packed => ((long)Layer << 32) | (uint)Expert;

    public static ExpertKey FromPacked(long packed) => new((int)(packed >> 32), (int)(uint)packed);

    public override string ToString() => $"L{Layer}/E{Expert}";
}
