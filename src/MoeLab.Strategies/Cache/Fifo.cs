namespace MoeLab.Strategies.Cache;

/// <summary>First in, first out: evicts the expert admitted longest ago; hits change nothing.</summary>
public sealed class Fifo : CachePolicy
{
    public static readonly StrategyDescriptor Descriptor = CacheCatalog.Describe(
        "fifo", "first in, first out (hits do not reorder)", [], (_, ctx, capacity) => new Fifo(capacity, ctx.ExpertSize));

    private readonly SlotLinks _links;
    private SlotList _order = SlotList.Empty; // front = newest

    public Fifo(long capacity, long expertSize = 1)
        : base("fifo", capacity, ExpectedExperts(capacity, expertSize)) => _links = new SlotLinks(SlotCapacity);

    protected override int Victim() => _order.Tail;

    protected override void OnHit(int slot, long time)
    {
    }

    protected override void OnInsert(int slot, long time) => _links.PushFront(ref _order, slot, SizeOf(slot));

    protected override void OnLeave(int slot, bool evicted) => _links.Unlink(ref _order, slot, SizeOf(slot));

    protected override void OnSlotsResized(int capacity) => _links.Resize(capacity);
}
