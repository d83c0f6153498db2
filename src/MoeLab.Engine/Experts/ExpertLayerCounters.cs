namespace MoeLab.Engine.Experts;

/// <summary>
/// Demand outcomes of an expert source per MoE layer, cumulative since the source was built: the per-layer split of
/// <see cref="ExpertSourceCounters.Hits"/>, <see cref="ExpertSourceCounters.Misses"/> and
/// <see cref="ExpertSourceCounters.PrefetchHits"/> (each demand is exactly one of the three). Written only where the
/// totals are, on the model's thread, so the model's thread may read them between forward passes without a lock.
/// </summary>
public sealed class ExpertLayerCounters
{
    private readonly long[] _hits;
    private readonly long[] _misses;
    private readonly long[] _prefetchHits;

    public ExpertLayerCounters(int layers)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(layers);
        _hits = new long[layers];
        _misses = new long[layers];
        _prefetchHits = new long[layers];
    }

    public int Layers => _hits.Length;

    public ReadOnlySpan<long> Hits => _hits;

    public ReadOnlySpan<long> Misses => _misses;

    public ReadOnlySpan<long> PrefetchHits => _prefetchHits;

    public void Count(int layer, ExpertOutcome outcome)
    {
        switch (outcome)
        {
            case ExpertOutcome.Hit: _hits[layer]++; break;
            case ExpertOutcome.Miss: _misses[layer]++; break;
            default: _prefetchHits[layer]++; break;
        }
    }
}

/// <summary>
/// Sums an <see cref="ExpertLayerCounters"/>' growth over chosen windows (e.g. only the measured decode steps, not
/// the prompt or warm-up): <see cref="Begin"/> before a forward pass, <see cref="End"/> after it. Buffers are
/// allocated once; Begin and End allocate nothing.
/// </summary>
public sealed class ExpertLayerTally
{
    private readonly ExpertLayerCounters _counters;
    private readonly long[] _before;
    private readonly long[] _hits;
    private readonly long[] _misses;
    private readonly long[] _prefetchHits;

    public ExpertLayerTally(ExpertLayerCounters counters)
    {
        _counters = counters;
        int n = counters.Layers;
        _before = new long[3 * n];
        _hits = new long[n];
        _misses = new long[n];
        _prefetchHits = new long[n];
    }

    public int Layers => _hits.Length;

    public ReadOnlySpan<long> Hits => _hits;

    public ReadOnlySpan<long> Misses => _misses;

    public ReadOnlySpan<long> PrefetchHits => _prefetchHits;

    public void Begin()
    {
        int n = _hits.Length;
        _counters.Hits.CopyTo(_before.AsSpan(0, n));
        _counters.Misses.CopyTo(_before.AsSpan(n, n));
        _counters.PrefetchHits.CopyTo(_before.AsSpan(2 * n, n));
    }

    public void End()
    {
        int n = _hits.Length;
        Add(_hits, _counters.Hits, _before.AsSpan(0, n));
        Add(_misses, _counters.Misses, _before.AsSpan(n, n));
        Add(_prefetchHits, _counters.PrefetchHits, _before.AsSpan(2 * n, n));
    }

    private static void Add(Span<long> total, ReadOnlySpan<long> now, ReadOnlySpan<long> before)
    {
        for (int i = 0; i < total.Length; i++) total[i] += now[i] - before[i];
    }
}
