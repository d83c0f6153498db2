using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Cache;

/// <summary>
/// Adaptive replacement cache (Megiddo and Modha, FAST 2003): a recency list T1 and a frequency list T2, with ghost
/// lists B1/B2 of recently evicted keys steering the target size p of T1. Sizes are counted in the cache's unit, as
/// libCacheSim's ARC.c does (its byte-size generalization of cases I–IV, reproduced request for request).
/// </summary>
public sealed class Arc : CachePolicy
{
    public static readonly StrategyDescriptor Descriptor = CacheCatalog.Describe(
        "arc", "adaptive replacement cache: recency and frequency lists balanced by ghost hits (libCacheSim ARC)", [],
        (_, ctx, capacity) => new Arc(capacity, ctx.ExpertSize));

    private readonly SlotLinks _links;
    private bool[] _inT2;
    private SlotList _t1 = SlotList.Empty;
    private SlotList _t2 = SlotList.Empty;
    private readonly GhostList _b1;
    private readonly GhostList _b2;
    private double _p; // target size of T1

    // A ghost hit on the current request sends the expert to T2 and makes REPLACE favour the other side.
    private long _ghostHitKey = -1;
    private bool _ghostHitInB2;

    private int _victim = -1;
    private bool _victimToGhost;

    public Arc(long capacity, long expertSize = 1)
        : base("arc", capacity, ExpectedExperts(capacity, expertSize))
    {
        _links = new SlotLinks(SlotCapacity);
        _inT2 = new bool[SlotCapacity];
        _b1 = new GhostList(SlotCapacity);
        _b2 = new GhostList(SlotCapacity);
    }

    /// <summary>The adaptive target for T1's size.</summary>
    public double TargetRecencySize => _p;

    protected override void OnHit(int slot, long time)
    {
        _ghostHitKey = -1;
        if (_inT2[slot])
        {
            _links.MoveToFront(ref _t2, slot);
            return;
        }

        _links.Unlink(ref _t1, slot, SizeOf(slot));
        _links.PushFront(ref _t2, slot, SizeOf(slot));
        _inT2[slot] = true;
    }

    protected override void OnMiss(ExpertKey key, long size, long time)
    {
        _ghostHitKey = -1;
        long packed = key.Packed;
        if (_b1.Contains(packed))
        {
            _p = Math.Min(_p + Math.Max((double)_b2.Size / _b1.Size, 1), Capacity);
            _b1.Remove(packed);
            _ghostHitKey = packed;
            _ghostHitInB2 = false;
        }
        else if (_b2.Contains(packed))
        {
            _p = Math.Max(_p - Math.Max((double)_b1.Size / _b2.Size, 1), 0);
            _b2.Remove(packed);
            _ghostHitKey = packed;
            _ghostHitInB2 = true;
        }
    }

    protected override void PrepareEviction(ExpertKey incoming, long incomingSize, long time)
    {
        if (_ghostHitKey == incoming.Packed)
        {
            Replace();
            return;
        }

        // Case IV: the key is in no list.
        bool l2Ghost = false;
        if (_t1.Size + _b1.Size + incomingSize > Capacity)
        {
            if (_b1.Size > 0)
            {
                _b1.RemoveOldest();
                Replace(l2Ghost);
            }
            else
            {
                _victim = _t1.Tail;
                _victimToGhost = false;
            }

            return;
        }

        if (_t1.Size + _b1.Size + _t2.Size + _b2.Size >= 2 * Capacity && _b2.Size > 0) _b2.RemoveOldest();
        Replace(l2Ghost);
    }

    protected override int Victim() => _victim;

    protected override void OnInsert(int slot, long time)
    {
        if (_ghostHitKey == KeyOf(slot).Packed)
        {
            _ghostHitKey = -1;
            _inT2[slot] = true;
            _links.PushFront(ref _t2, slot, SizeOf(slot));
            return;
        }

        _inT2[slot] = false;
        _links.PushFront(ref _t1, slot, SizeOf(slot));
    }

    protected override void OnLeave(int slot, bool evicted)
    {
        long size = SizeOf(slot);
        bool inT2 = _inT2[slot];
        if (inT2) _links.Unlink(ref _t2, slot, size);
        else _links.Unlink(ref _t1, slot, size);
        if (!evicted || !_victimToGhost) return;
        (inT2 ? _b2 : _b1).PushFront(KeyOf(slot).Packed, size);
    }

    protected override void OnSlotsResized(int capacity)
    {
        _links.Resize(capacity);
        Array.Resize(ref _inT2, capacity);
    }

    private void Replace() => Replace(_ghostHitInB2);

    // REPLACE(x, p) of the paper: evict T1's LRU into B1 when T1 exceeds its target, else T2's LRU into B2.
    private void Replace(bool incomingInB2)
    {
        bool fromT1 = (_t1.Size > 0 && (_t1.Size > _p || (_t1.Size == _p && incomingInB2))) || _t2.Size == 0;
        _victim = fromT1 ? _t1.Tail : _t2.Tail;
        _victimToGhost = true;
    }
}
