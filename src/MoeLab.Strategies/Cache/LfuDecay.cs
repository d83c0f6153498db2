namespace MoeLab.Strategies.Cache;

/// <summary>
/// LFU with exponentially decayed counts: each request adds 1 and a count halves every <c>half_life_tokens</c>, so
/// experts popular long ago give way to experts popular now. Counts are kept in the log domain
/// (log2(count) + t / half-life), which orders experts exactly as their decayed counts do at any common time.
/// </summary>
public sealed class LfuDecay : CachePolicy
{
    public static readonly StrategyDescriptor Descriptor = CacheCatalog.Describe(
        "lfu-decay", "LFU whose counts halve every half_life_tokens tokens",
        [new("half_life_tokens", "double", "64", "tokens after which a request counts half; requests per token = layers × experts per token")],
        (p, ctx, capacity) => new LfuDecay(capacity,
            p.Double("half_life_tokens", 64, min: 1e-6) * Math.Max(1, ctx.Shape.Layers * ctx.Shape.ExpertsPerToken), ctx.ExpertSize));

    private readonly SlotHeap _heap;
    private readonly double _halfLifeRequests;
    private long _sequence;

    /// <param name="halfLifeRequests">Half-life in the caller's time unit (requests).</param>
    public LfuDecay(long capacity, double halfLifeRequests, long expertSize = 1)
        : base("lfu-decay", capacity, ExpectedExperts(capacity, expertSize))
    {
        if (!(halfLifeRequests > 0)) throw new ArgumentOutOfRangeException(nameof(halfLifeRequests), halfLifeRequests, "the half-life must be positive");
        _halfLifeRequests = halfLifeRequests;
        _heap = new SlotHeap(SlotCapacity);
    }

    protected override int Victim() => _heap.Top;

    protected override void OnHit(int slot, long time)
    {
        double now = time / _halfLifeRequests;
        // log2(2^(v − now) + 1) + now: the decayed count at time now, plus this request.
        double v = now + Math.Log2(Math.Pow(2, _heap.Major(slot) - now) + 1);
        _heap.Update(slot, v, _sequence++);
    }

    protected override void OnInsert(int slot, long time) => _heap.Insert(slot, time / _halfLifeRequests, _sequence++);

    protected override void OnLeave(int slot, bool evicted) => _heap.Remove(slot);

    protected override void OnSlotsResized(int capacity) => _heap.Resize(capacity);
}
