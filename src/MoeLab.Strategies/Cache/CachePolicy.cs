using System.Diagnostics;
using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Cache;

/// <summary>
/// The shared find → evict-until-fits → insert logic of every replacement policy (libCacheSim's cache_get_base).
/// A policy supplies only its ordering: what a hit, an insert and a departure do to its queues, and which resident
/// slot is the <see cref="Victim"/>. Residency is kept in flat slot arrays with an open-addressing index, so
/// steady-state requests allocate nothing. Sizes are in the caller's unit (bytes, or 1 per expert).
/// </summary>
public abstract class CachePolicy : ICachePolicy
{
    private readonly KeyIndex _index;
    private long[] _slotKey;
    private long[] _slotSize;
    private int[] _nextFree;
    private int _freeHead = -1;
    private int _slotsUsed;

    protected CachePolicy(string name, long capacity, int expectedExperts = 64)
    {
        if (capacity < 0) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "a cache capacity cannot be negative");
        Name = name;
        Capacity = capacity;
        int slots = Math.Clamp(expectedExperts, 4, 1 << 20);
        _index = new KeyIndex(slots);
        _slotKey = new long[slots];
        _slotSize = new long[slots];
        _nextFree = new int[slots];
    }

    public string Name { get; }

    public long Capacity { get; }

    public long Used { get; private set; }

    public int Count => _index.Count;

    /// <summary>Slots any per-slot array of a derived policy must cover (grows; see <see cref="OnSlotsResized"/>).</summary>
    protected int SlotCapacity => _slotKey.Length;

    protected ExpertKey KeyOf(int slot) => ExpertKey.FromPacked(_slotKey[slot]);

    protected long SizeOf(int slot) => _slotSize[slot];

    /// <summary>The slot holding key, or -1.</summary>
    protected int SlotOf(ExpertKey key) => _index.Find(key.Packed);

    public bool Contains(ExpertKey key) => _index.Find(key.Packed) >= 0;

    public bool Access(ExpertKey key, long size, long time)
    {
        int slot = _index.Find(key.Packed);
        if (slot < 0)
        {
            OnMiss(key, size, time);
            return false;
        }

        OnHit(slot, time);
        return true;
    }

    public bool Admit(ExpertKey key, long size, long time, IEvictionSink? evicted)
    {
        if (_index.Find(key.Packed) >= 0) return true;
        if (!CanAdmit(key, size, time)) return false;
        while (Used + size > Capacity)
        {
            PrepareEviction(key, size, time);
            int victim = Victim();
            Debug.Assert(victim >= 0 && _index.Find(_slotKey[victim]) == victim, "Victim() must name a resident slot");
            Leave(victim, evicted: true, evicted);
        }

        if (!InsertsAfterEviction(key, size)) return false;
        int s = AllocateSlot(key.Packed, size);
        OnInsert(s, time);
        return true;
    }

    public void Remove(ExpertKey key)
    {
        int slot = _index.Find(key.Packed);
        if (slot >= 0) Leave(slot, evicted: false, null);
    }

    /// <summary>Whether an expert of this size may enter at all (before anything is evicted for it).</summary>
    protected virtual bool CanAdmit(ExpertKey key, long size, long time) => size <= Capacity;

    /// <summary>
    /// Called before each <see cref="Victim"/> while room is being made for an incoming expert; policies with
    /// adaptive structure (s3-fifo promotions, arc ghost trimming) reorganize here.
    /// </summary>
    protected virtual void PrepareEviction(ExpertKey incoming, long incomingSize, long time)
    {
    }

    /// <summary>The resident slot to evict next. No side effects.</summary>
    protected abstract int Victim();

    /// <summary>A last word after room was made (libCacheSim's s3-fifo declines an object as large as its small queue).</summary>
    protected virtual bool InsertsAfterEviction(ExpertKey key, long size) => true;

    /// <summary>A demand request found the key resident.</summary>
    protected abstract void OnHit(int slot, long time);

    /// <summary>A demand request did not find the key (ghost lists learn from this).</summary>
    protected virtual void OnMiss(ExpertKey key, long size, long time)
    {
    }

    /// <summary>The key was inserted into slot.</summary>
    protected abstract void OnInsert(int slot, long time);

    /// <summary>The slot leaves the cache: unlink it from the policy's order (evicted = replacement, not a Remove call).</summary>
    protected abstract void OnLeave(int slot, bool evicted);

    /// <summary>The slot arrays grew to capacity; resize per-slot state.</summary>
    protected abstract void OnSlotsResized(int capacity);

    private void Leave(int slot, bool evicted, IEvictionSink? sink)
    {
        OnLeave(slot, evicted);
        long key = _slotKey[slot];
        long size = _slotSize[slot];
        _index.Remove(key);
        _nextFree[slot] = _freeHead;
        _freeHead = slot;
        Used -= size;
        sink?.OnEvicted(ExpertKey.FromPacked(key), size);
    }

    private int AllocateSlot(long key, long size)
    {
        int slot;
        if (_freeHead >= 0)
        {
            slot = _freeHead;
            _freeHead = _nextFree[slot];
        }
        else
        {
            if (_slotsUsed == _slotKey.Length)
            {
                int grown = _slotKey.Length * 2;
                Array.Resize(ref _slotKey, grown);
                Array.Resize(ref _slotSize, grown);
                Array.Resize(ref _nextFree, grown);
                OnSlotsResized(grown);
            }

            slot = _slotsUsed++;
        }

        _slotKey[slot] = key;
        _slotSize[slot] = size;
        _index.Add(key, slot);
        Used += size;
        return slot;
    }

    /// <summary>A starting slot count: the capacity in experts when sizes are units, else a modest guess that grows.</summary>
    protected static int ExpectedExperts(long capacity, long expertSize) =>
        (int)Math.Clamp(capacity / Math.Max(1, expertSize) + 1, 4, 1 << 16);
}
