namespace MoeLab.Strategies.Cache;

/// <summary>
/// Keys (with sizes) of experts no longer resident, newest first: the ghost queues of arc (B1, B2) and s3-fifo.
/// Remembers without holding data; allocation-free once its arrays have grown to the ghost's population.
/// </summary>
internal sealed class GhostList
{
    private readonly KeyIndex _index;
    private readonly SlotLinks _links;
    private long[] _key;
    private long[] _size;
    private int[] _nextFree;
    private int _freeHead = -1;
    private int _slotsUsed;
    private SlotList _order = SlotList.Empty;

    public GhostList(int expected)
    {
        int n = Math.Max(4, expected);
        _index = new KeyIndex(n);
        _links = new SlotLinks(n);
        _key = new long[n];
        _size = new long[n];
        _nextFree = new int[n];
    }

    /// <summary>Sum of the sizes of the remembered keys.</summary>
    public long Size => _order.Size;

    public int Count => _order.Count;

    public bool Contains(long key) => _index.Find(key) >= 0;

    public void PushFront(long key, long size)
    {
        int slot;
        if (_freeHead >= 0)
        {
            slot = _freeHead;
            _freeHead = _nextFree[slot];
        }
        else
        {
            if (_slotsUsed == _key.Length)
            {
                int grown = _key.Length * 2;
                Array.Resize(ref _key, grown);
                Array.Resize(ref _size, grown);
                Array.Resize(ref _nextFree, grown);
                _links.Resize(grown);
            }

            slot = _slotsUsed++;
        }

        _key[slot] = key;
        _size[slot] = size;
        _index.Add(key, slot);
        _links.PushFront(ref _order, slot, size);
    }

    /// <summary>Forgets key; returns whether it was remembered.</summary>
    public bool Remove(long key)
    {
        int slot = _index.Find(key);
        if (slot < 0) return false;
        Free(slot);
        return true;
    }

    /// <summary>Forgets the oldest key.</summary>
    public void RemoveOldest() => Free(_order.Tail);

    private void Free(int slot)
    {
        _links.Unlink(ref _order, slot, _size[slot]);
        _index.Remove(_key[slot]);
        _nextFree[slot] = _freeHead;
        _freeHead = slot;
    }
}
