namespace MoeLab.Strategies.Cache;

/// <summary>
/// Least frequently used, counting requests since admission (a re-admitted expert starts at 1). Ties go to the
/// expert that reached its count earliest, i.e. the least recently used among equals: libCacheSim's LFU.c, whose
/// per-frequency FIFO lists this heap order reproduces.
/// </summary>
public sealed class Lfu : CachePolicy
{
    public static readonly StrategyDescriptor Descriptor = CacheCatalog.Describe(
        "lfu", "least frequently used since admission; ties evict the least recently used (libCacheSim LFU)", [],
        (_, ctx, capacity) => new Lfu(capacity, ctx.ExpertSize));

    private readonly SlotHeap _heap;
    private long _sequence; // orders ties by when a slot reached its count

    public Lfu(long capacity, long expertSize = 1)
        : base("lfu", capacity, ExpectedExperts(capacity, expertSize)) => _heap = new SlotHeap(SlotCapacity);

    protected override int Victim() => _heap.Top;

    protected override void OnHit(int slot, long time) => _heap.Update(slot, _heap.Major(slot) + 1, _sequence++);

    protected override void OnInsert(int slot, long time) => _heap.Insert(slot, 1, _sequence++);

    protected override void OnLeave(int slot, bool evicted) => _heap.Remove(slot);

    protected override void OnSlotsResized(int capacity) => _heap.Resize(capacity);
}
