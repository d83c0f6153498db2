using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Cache;

/// <summary>
/// S3-FIFO (Yang et al., SOSP 2023): a small FIFO filters one-hit experts, a main FIFO with reinsertion keeps the rest,
/// and a ghost FIFO of keys evicted from the small queue sends returning experts straight to main.
/// Follows libCacheSim's S3FIFO.c exactly, including its edges: the small queue gets floor(capacity × ratio); an
/// expert enters it only when strictly smaller than it (so with unit sizes a cache under 20 experts caches nothing
/// at the default ratio); a small-queue eviction promotes entries until one can leave.
/// </summary>
public sealed class S3Fifo : CachePolicy
{
    public static readonly StrategyDescriptor Descriptor = CacheCatalog.Describe(
        "s3-fifo", "small + main FIFO queues with a ghost queue (libCacheSim S3FIFO)",
        [
            new("small_size_ratio", "double", "0.1", "share of the capacity given to the small (probationary) FIFO; libCacheSim fifo-size-ratio"),
            new("ghost_size_ratio", "double", "0.9", "ghost queue size as a share of the capacity; libCacheSim ghost-size-ratio"),
            new("move_to_main_threshold", "int", "2", "hits in the small queue that promote an expert to main; libCacheSim move-to-main-threshold"),
        ],
        (p, ctx, capacity) => new S3Fifo(capacity, p.Double("small_size_ratio", 0.1, 0, 1), p.Double("ghost_size_ratio", 0.9, 0, 10),
            p.Int("move_to_main_threshold", 2, min: 1), ctx.ExpertSize),
        scoped: true, "s3fifo");

    private readonly SlotLinks _links;
    private int[] _freq;
    private bool[] _inMain;
    private SlotList _small = SlotList.Empty;
    private SlotList _main = SlotList.Empty;
    private readonly GhostList _ghost;
    private readonly long _smallCapacity;
    private readonly long _mainCapacity;
    private readonly long _ghostCapacity;
    private readonly int _moveToMainThreshold;

    private long _ghostHitKey = -1;
    private int _victim = -1;
    private bool _victimToGhost;

    public S3Fifo(long capacity, double smallSizeRatio = 0.1, double ghostSizeRatio = 0.9, int moveToMainThreshold = 2, long expertSize = 1)
        : base("s3-fifo", capacity, ExpectedExperts(capacity, expertSize))
    {
        _smallCapacity = (long)(capacity * smallSizeRatio);
        _mainCapacity = capacity - _smallCapacity;
        _ghostCapacity = (long)(capacity * ghostSizeRatio);
        _moveToMainThreshold = moveToMainThreshold;
        _links = new SlotLinks(SlotCapacity);
        _freq = new int[SlotCapacity];
        _inMain = new bool[SlotCapacity];
        _ghost = new GhostList(SlotCapacity);
    }

    public long SmallCapacity => _smallCapacity;

    protected override bool CanAdmit(ExpertKey key, long size, long time) => size <= _smallCapacity;

    protected override void OnHit(int slot, long time)
    {
        _ghostHitKey = -1;
        _freq[slot]++;
    }

    protected override void OnMiss(ExpertKey key, long size, long time) =>
        _ghostHitKey = _ghostCapacity > 0 && _ghost.Remove(key.Packed) ? key.Packed : -1;

    protected override void PrepareEviction(ExpertKey incoming, long incomingSize, long time)
    {
        while (true)
        {
            if (_main.Size > _mainCapacity || _small.Size == 0)
            {
                // Main: experts hit since their last pass are reinserted with one credit less (at most 2 kept).
                while (true)
                {
                    int t = _main.Tail;
                    if (_freq[t] >= 1)
                    {
                        _links.MoveToFront(ref _main, t);
                        _freq[t] = Math.Min(_freq[t], 3) - 1;
                        continue;
                    }

                    _victim = t;
                    _victimToGhost = false;
                    return;
                }
            }

            // Small: experts hit often enough move to main; the first that is not leaves (into the ghost queue).
            while (_small.Count > 0)
            {
                int t = _small.Tail;
                if (_freq[t] >= _moveToMainThreshold)
                {
                    long size = SizeOf(t);
                    _links.Unlink(ref _small, t, size);
                    _links.PushFront(ref _main, t, size);
                    _inMain[t] = true;
                    _freq[t] = 0;
                    continue;
                }

                _victim = t;
                _victimToGhost = true;
                return;
            }
        }
    }

    protected override int Victim() => _victim;

    protected override bool InsertsAfterEviction(ExpertKey key, long size) => _ghostHitKey == key.Packed || size < _smallCapacity;

    protected override void OnInsert(int slot, long time)
    {
        _freq[slot] = 0;
        bool toMain = _ghostHitKey == KeyOf(slot).Packed;
        _ghostHitKey = -1;
        _inMain[slot] = toMain;
        if (toMain) _links.PushFront(ref _main, slot, SizeOf(slot));
        else _links.PushFront(ref _small, slot, SizeOf(slot));
    }

    protected override void OnLeave(int slot, bool evicted)
    {
        long size = SizeOf(slot);
        if (_inMain[slot]) _links.Unlink(ref _main, slot, size);
        else _links.Unlink(ref _small, slot, size);
        if (!evicted || !_victimToGhost || _ghostCapacity <= 0) return;
        long key = KeyOf(slot).Packed;
        if (size > _ghostCapacity || _ghost.Contains(key)) return;
        while (_ghost.Size + size > _ghostCapacity) _ghost.RemoveOldest();
        _ghost.PushFront(key, size);
    }

    protected override void OnSlotsResized(int capacity)
    {
        _links.Resize(capacity);
        Array.Resize(ref _freq, capacity);
        Array.Resize(ref _inMain, capacity);
    }
}
