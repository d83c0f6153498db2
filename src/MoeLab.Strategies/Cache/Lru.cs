using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Cache;

/// <summary>Least recently used: evicts the expert whose last request is oldest.</summary>
public sealed class Lru : ICachePolicy
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Cache, "lru", "least recently used", [], (_, ctx) => new Lru(ctx.Capacity));

    private readonly Dictionary<long, LinkedListNode<(ExpertKey Key, long Size)>> _index = new();
    private readonly LinkedList<(ExpertKey Key, long Size)> _order = new(); // front = most recent

    public Lru(long capacity) => Capacity = capacity;

    public string Name => "lru";

    public long Capacity { get; }

    public long Used { get; private set; }

    public int Count => _index.Count;

    public bool Contains(ExpertKey key) => _index.ContainsKey(key.Packed);

    public bool Access(ExpertKey key, long size, long time)
    {
        if (!_index.TryGetValue(key.Packed, out var node)) return false;
        _order.Remove(node);
        _order.AddFirst(node);
        return true;
    }

    public bool Admit(ExpertKey key, long size, long time, IEvictionSink? evicted)
    {
        if (_index.ContainsKey(key.Packed)) return true;
        if (size > Capacity) return false;
        while (Used + size > Capacity)
        {
            var last = _order.Last!;
            _order.RemoveLast();
            _index.Remove(last.Value.Key.Packed);
            Used -= last.Value.Size;
            evicted?.OnEvicted(last.Value.Key, last.Value.Size);
        }

        _index[key.Packed] = _order.AddFirst((key, size));
        Used += size;
        return true;
    }

    public void Remove(ExpertKey key)
    {
        if (!_index.Remove(key.Packed, out var node)) return;
        _order.Remove(node);
        Used -= node.Value.Size;
    }
}
