using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Cache;

/// <summary>Least recently used: evicts the expert whose last request is oldest.</summary>
public sealed class Lru : CachePolicy
{
    public static readonly StrategyDescriptor Descriptor = CacheCatalog.Describe(
        "lru", "least recently used", [], (_, ctx, capacity) => new Lru(capacity, ctx.ExpertSize));

    private readonly SlotLinks _links;
    private SlotList _order = SlotList.Empty; // front = most recent

    public Lru(long capacity, long expertSize = 1)
        : base("lru", capacity, ExpectedExperts(capacity, expertSize)) => _links = new SlotLinks(SlotCapacity);

    protected override int Victim() => _order.Tail;

    protected override void OnHit(int slot, long time) => _links.MoveToFront(ref _order, slot);

    protected override void OnInsert(int slot, long time) => _links.PushFront(ref _order, slot, SizeOf(slot));

    protected override void OnLeave(int slot, bool evicted) => _links.Unlink(ref _order, slot, SizeOf(slot));

    protected override void OnSlotsResized(int capacity) => _links.Resize(capacity);
}
