using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Strategies.Cache;

/// <summary>
/// When each expert is next requested, precomputed from the future trace (request time = index in the replayed
/// sequence after skipped tokens). Answers in O(1) for the request at hand and by binary search otherwise
/// (a prefetch admitted between requests). Allocation-free after construction.
/// </summary>
public sealed class FutureIndex
{
    public const long Never = long.MaxValue;

    private readonly int _layers;
    private readonly int _expertsPerLayer;
    private readonly int[] _dense;       // request time → dense key id
    private readonly long[] _nextUse;    // request time → next time of the same key, or Never
    private readonly int[] _start;       // dense key id → first index into _times
    private readonly int[] _times;       // request times grouped by key, ascending

    public FutureIndex(RoutingTrace trace, int skipTokens)
    {
        _layers = trace.Layers;
        _expertsPerLayer = trace.ExpertsPerLayer;
        var keys = trace.RequestSequence(skipTokens);
        int n = keys.Length, ids = _layers * _expertsPerLayer;
        _dense = new int[n];
        _nextUse = new long[n];
        _start = new int[ids + 1];
        _times = new int[n];
        for (int t = 0; t < n; t++)
        {
            _dense[t] = keys[t].Layer * _expertsPerLayer + keys[t].Expert;
            _start[_dense[t] + 1]++;
        }

        for (int i = 0; i < ids; i++) _start[i + 1] += _start[i];
        var fill = (int[])_start.Clone();
        for (int t = 0; t < n; t++) _times[fill[_dense[t]]++] = t;
        var last = new long[ids];
        Array.Fill(last, Never);
        for (int t = n - 1; t >= 0; t--)
        {
            _nextUse[t] = last[_dense[t]];
            last[_dense[t]] = t;
        }
    }

    /// <summary>Requests in the indexed future.</summary>
    public int Length => _dense.Length;

    /// <summary>The first request time after <paramref name="time"/> at which key is requested, or <see cref="Never"/>.</summary>
    public long NextUseAfter(ExpertKey key, long time)
    {
        if ((uint)key.Layer >= (uint)_layers || (uint)key.Expert >= (uint)_expertsPerLayer) return Never;
        int id = key.Layer * _expertsPerLayer + key.Expert;
        if ((ulong)time < (ulong)_dense.Length && _dense[time] == id) return _nextUse[time];
        int lo = _start[id], hi = _start[id + 1];
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_times[mid] <= time) lo = mid + 1;
            else hi = mid;
        }

        return lo < _start[id + 1] ? _times[lo] : Never;
    }
}
