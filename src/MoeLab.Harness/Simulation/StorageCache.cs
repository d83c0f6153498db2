namespace MoeLab.Harness.Simulation;

/// <summary>
/// A cache below the device interface that O_DIRECT does not bypass (on a VM, the host's page cache over the virtual
/// disk's backing file), as the simulator sees it: an LRU over the file's byte ranges, one range per object (a routed
/// expert's slices, or a layer's dense weights in page-cache mode). Every device read passes through it: a read whose
/// range is resident is served at the cache's rate, any other at the device's and is then resident. Allocation-free
/// after construction (an intrusive list over object ids), since the replay calls it for every miss.
/// </summary>
public sealed class StorageCache
{
    private readonly int[] _prev, _next;
    private readonly long[] _size; // 0 = not resident
    private int _head = -1, _tail = -1; // most and least recently read

    /// <param name="objects">Object ids are 0 … objects − 1.</param>
    /// <param name="capacityBytes">Bytes the cache holds.</param>
    public StorageCache(int objects, long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacityBytes);
        _prev = new int[objects];
        _next = new int[objects];
        _size = new long[objects];
        CapacityBytes = capacityBytes;
    }

    public long CapacityBytes { get; }

    public long ResidentBytes { get; private set; }

    public long Hits { get; private set; }

    public long Misses { get; private set; }

    public bool Contains(int id) => _size[id] > 0;

    /// <summary>
    /// One read of object <paramref name="id"/> of <paramref name="bytes"/>: true if it was resident (served by the
    /// cache). Either way it becomes the most recent; older objects are evicted until it fits. An object larger than
    /// the cache is never resident.
    /// </summary>
    public bool Read(int id, long bytes)
    {
        if (_size[id] > 0)
        {
            Hits++;
            Unlink(id);
            PushFront(id);
            return true;
        }

        Misses++;
        if (bytes <= 0 || bytes > CapacityBytes) return false;
        while (ResidentBytes + bytes > CapacityBytes) Evict(_tail);
        _size[id] = bytes;
        ResidentBytes += bytes;
        PushFront(id);
        return false;
    }

    private void Evict(int id)
    {
        Unlink(id);
        ResidentBytes -= _size[id];
        _size[id] = 0;
    }

    private void Unlink(int id)
    {
        int p = _prev[id], n = _next[id];
        if (p >= 0) _next[p] = n;
        else _head = n;
        if (n >= 0) _prev[n] = p;
        else _tail = p;
    }

    private void PushFront(int id)
    {
        _prev[id] = -1;
        _next[id] = _head;
        if (_head >= 0) _prev[_head] = id;
        _head = id;
        if (_tail < 0) _tail = id;
    }
}
