using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Cache;

/// <summary>
/// Belady's MIN (1966): evicts the resident expert whose next request is furthest in the future. Needs the future
/// trace, so it runs only in trace replay: the bound every chart should show. By default every miss is admitted, as in
/// libCacheSim's Belady.c (optimal among caches that must admit); with <c>bypass</c> an expert requested later than
/// every resident one is not cached at all (optimal among caches that may bypass, unit sizes).
/// </summary>
public sealed class Belady : CachePolicy
{
    public static readonly StrategyDescriptor Descriptor = CacheCatalog.Describe(
        "belady", "offline optimum: evicts the expert needed furthest in the future (needs the future trace)",
        [new("bypass", "bool", "false", "do not cache a missed expert needed later than every resident one (true OPT with bypass); false = libCacheSim Belady")],
        (p, ctx, capacity) => new Belady(capacity, Future(p, ctx), p.Bool("bypass", false), ctx.ExpertSize),
        scoped: true, "min", "opt");

    private readonly FutureIndex _future;
    private readonly bool _bypass;
    private readonly SlotHeap _heap; // min-heap on −next use: the top is needed last
    private long _sequence;

    public Belady(long capacity, FutureIndex future, bool bypass = false, long expertSize = 1)
        : base(bypass ? "belady-bypass" : "belady", capacity, ExpectedExperts(capacity, expertSize))
    {
        _future = future;
        _bypass = bypass;
        _heap = new SlotHeap(SlotCapacity);
    }

    protected override bool CanAdmit(ExpertKey key, long size, long time)
    {
        if (size > Capacity) return false;
        if (!_bypass || Used + size <= Capacity) return true;
        return _future.NextUseAfter(key, time) < -_heap.Major(_heap.Top);
    }

    protected override int Victim() => _heap.Top;

    protected override void OnHit(int slot, long time) => _heap.Update(slot, Priority(slot, time), _sequence++);

    protected override void OnInsert(int slot, long time) => _heap.Insert(slot, Priority(slot, time), _sequence++);

    protected override void OnLeave(int slot, bool evicted) => _heap.Remove(slot);

    protected override void OnSlotsResized(int capacity) => _heap.Resize(capacity);

    private double Priority(int slot, long time) => -(double)_future.NextUseAfter(KeyOf(slot), time);

    private static FutureIndex Future(StrategyParameters p, StrategyContext ctx) =>
        ctx.FutureIndex ?? throw new StrategyException(p.Policy, null, "needs the future trace: it runs only in trace replay (moelab sim), not on a live engine");
}
