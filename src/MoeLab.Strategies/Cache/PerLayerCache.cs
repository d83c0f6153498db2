using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Cache;

/// <summary>
/// One independent cache per MoE layer, each with its own quota: the per-layer scope of any policy.
/// Requests are routed by <see cref="ExpertKey.Layer"/>; totals are sums over layers.
/// </summary>
public sealed class PerLayerCache : ICachePolicy
{
    private readonly ICachePolicy[] _layers;

    public PerLayerCache(ICachePolicy[] layers)
    {
        if (layers.Length == 0) throw new ArgumentException("a per-layer cache needs at least one layer", nameof(layers));
        _layers = layers;
        long capacity = 0;
        foreach (var layer in layers) capacity += layer.Capacity;
        Capacity = capacity;
    }

    /// <summary>Splits capacity into equal quotas (the remainder goes to the first layers) and builds each layer's policy.</summary>
    public static PerLayerCache Equal(int layers, long capacity, Func<long, ICachePolicy> create)
    {
        var caches = new ICachePolicy[layers];
        long share = capacity / layers, extra = capacity % layers;
        for (int l = 0; l < layers; l++) caches[l] = create(share + (l < extra ? 1 : 0));
        return new PerLayerCache(caches);
    }

    public string Name => _layers[0].Name;

    public long Capacity { get; }

    public long Used
    {
        get
        {
            long used = 0;
            foreach (var layer in _layers) used += layer.Used;
            return used;
        }
    }

    public int Count
    {
        get
        {
            int count = 0;
            foreach (var layer in _layers) count += layer.Count;
            return count;
        }
    }

    public IReadOnlyList<ICachePolicy> Layers => _layers;

    public bool Contains(ExpertKey key) => (uint)key.Layer < (uint)_layers.Length && _layers[key.Layer].Contains(key);

    public bool Access(ExpertKey key, long size, long time) => Layer(key).Access(key, size, time);

    public bool Admit(ExpertKey key, long size, long time, IEvictionSink? evicted) => Layer(key).Admit(key, size, time, evicted);

    public void Remove(ExpertKey key)
    {
        if ((uint)key.Layer < (uint)_layers.Length) _layers[key.Layer].Remove(key);
    }

    private ICachePolicy Layer(ExpertKey key) =>
        (uint)key.Layer < (uint)_layers.Length
            ? _layers[key.Layer]
            : throw new ArgumentOutOfRangeException(nameof(key), key, $"layer outside 0..{_layers.Length - 1} of this per-layer cache");
}
