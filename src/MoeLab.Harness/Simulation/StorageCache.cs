using MoeLab.Engine.Policies;
using MoeLab.Strategies.Cache;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// A cache below the device interface that O_DIRECT does not bypass (on a VM, the host's page cache over the virtual
/// disk's backing file), as the simulator sees it: an LRU over the file's byte ranges, one range per object (a routed
/// expert's slices, or a layer's dense weights in page-cache mode). Every device read passes through it: a read whose
/// range is resident is served at the cache's rate, any other at the device's and is then resident. The LRU is the
/// strategies' own <see cref="Lru"/> (allocation-free once its slots cover what fits), keyed by object id.
/// </summary>
public sealed class StorageCache
{
    private readonly Lru _lru;
    private readonly int _objects;
    private long _time;

    /// <param name="objects">Object ids are 0 … objects − 1.</param>
    /// <param name="capacityBytes">Bytes the cache holds.</param>
    public StorageCache(int objects, long capacityBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacityBytes);
        _objects = objects;
        _lru = new Lru(capacityBytes);
    }

    public long CapacityBytes => _lru.Capacity;

    public long ResidentBytes => _lru.Used;

    public long Hits { get; private set; }

    public long Misses { get; private set; }

    public bool Contains(int id) => _lru.Contains(Key(id));

    /// <summary>
    /// One read of object <paramref name="id"/> of <paramref name="bytes"/>: true if it was resident (served by the
    /// cache). Either way it becomes the most recent; older objects are evicted until it fits. An object larger than
    /// the cache is never resident.
    /// </summary>
    public bool Read(int id, long bytes)
    {
        var key = Key(id);
        if (_lru.Access(key, bytes, ++_time))
        {
            Hits++;
            return true;
        }

        Misses++;
        if (bytes > 0) _lru.Admit(key, bytes, _time, null);
        return false;
    }

    private ExpertKey Key(int id)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)id, (uint)_objects, nameof(id));
        return new ExpertKey(0, id);
    }
}
