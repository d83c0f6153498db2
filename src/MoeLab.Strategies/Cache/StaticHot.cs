using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Strategies.Cache;

/// <summary>
/// Pins the experts most often requested in a profile trace, as many as fit the capacity; every other expert
/// streams (is never admitted). A pinned expert enters on its first request and never leaves, unless the caller's
/// sizes exceed the planned ones (then the least popular pinned expert goes). <see cref="Pinned"/> lets an engine
/// preload them. The scope is always global: the ranking itself decides how many experts each layer gets.
/// </summary>
public sealed class StaticHot : CachePolicy
{
    public static readonly StrategyDescriptor Descriptor = CacheCatalog.Describe(
        "static-hot", "pins the most frequent experts of a profile trace; the rest stream",
        [new("profile_skip_tokens", "int", "0", "tokens at the start of the profile to ignore (e.g. a prefill block)")],
        (p, ctx, capacity) => new StaticHot(capacity,
            ctx.RequireProfile(p.Policy, null, "needs a profile trace to rank experts by popularity"),
            p.Int("profile_skip_tokens", 0, min: 0), ctx.ExpertSize),
        scoped: false);

    private readonly KeyIndex _rank; // hot key → popularity rank (0 = most requested)
    private readonly SlotHeap _heap;

    public StaticHot(long capacity, RoutingTrace profile, int profileSkipTokens, long expertSize)
        : base("static-hot", capacity, ExpectedExperts(capacity, expertSize))
    {
        var ranked = ProfileCounts.Ranked(profile, profileSkipTokens);
        int pinned = (int)Math.Min(ranked.Length, capacity / Math.Max(1, expertSize));
        Pinned = ranked[..pinned];
        _rank = new KeyIndex(pinned);
        for (int i = 0; i < pinned; i++) _rank.Add(Pinned[i].Packed, i);
        _heap = new SlotHeap(SlotCapacity);
    }

    /// <summary>The experts this cache keeps, most requested first.</summary>
    public IReadOnlyList<ExpertKey> Pinned { get; }

    protected override bool CanAdmit(ExpertKey key, long size, long time) => size <= Capacity && _rank.Find(key.Packed) >= 0;

    // Max-heap on rank: if sizes overflow the plan, the least popular pinned expert leaves first.
    protected override int Victim() => _heap.Top;

    protected override void OnHit(int slot, long time)
    {
    }

    protected override void OnInsert(int slot, long time) => _heap.Insert(slot, -_rank.Find(KeyOf(slot).Packed), 0);

    protected override void OnLeave(int slot, bool evicted) => _heap.Remove(slot);

    protected override void OnSlotsResized(int capacity) => _heap.Resize(capacity);
}

/// <summary>Request counts of a profile trace, shared by the profile-driven strategies.</summary>
public static class ProfileCounts
{
    /// <summary>counts[layer][expert] over the profile after skipping tokens.</summary>
    public static long[][] PerLayer(RoutingTrace profile, int skipTokens)
    {
        var counts = new long[profile.Layers][];
        for (int l = 0; l < profile.Layers; l++) counts[l] = new long[profile.ExpertsPerLayer];
        for (int t = Math.Max(0, skipTokens); t < profile.Tokens; t++)
        {
            for (int l = 0; l < profile.Layers; l++)
            {
                foreach (int e in profile.Experts(t, l)) counts[l][e]++;
            }
        }

        return counts;
    }

    /// <summary>Every requested expert, most requested first (ties: lower layer, then lower expert id).</summary>
    public static ExpertKey[] Ranked(RoutingTrace profile, int skipTokens)
    {
        var counts = PerLayer(profile, skipTokens);
        var keys = new List<(ExpertKey Key, long Count)>();
        for (int l = 0; l < counts.Length; l++)
        {
            for (int e = 0; e < counts[l].Length; e++)
            {
                if (counts[l][e] > 0) keys.Add((new ExpertKey(l, e), counts[l][e]));
            }
        }

        return keys.OrderByDescending(k => k.Count).ThenBy(k => k.Key.Layer).ThenBy(k => k.Key.Expert).Select(k => k.Key).ToArray();
    }
}
