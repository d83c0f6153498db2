using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Strategies.Cache;

/// <summary>What one replay of a request sequence through a cache counted.</summary>
public readonly record struct CacheReplayResult(long Requests, long Hits, long BytesRequested, long BytesMissed)
{
    public long Misses => Requests - Hits;

    public double HitRatio => Requests == 0 ? 0 : (double)Hits / Requests;

    public double MissRatio => Requests == 0 ? 0 : (double)Misses / Requests;
}

/// <summary>
/// Replays demand requests through a cache policy as the engine issues them: <see cref="ICachePolicy.Access"/>, and
/// on a miss <see cref="ICachePolicy.Admit"/> (libCacheSim's get). Time is the request's index from the first replayed
/// request, which is what offline policies (belady) index their future with. Allocation-free.
/// </summary>
public static class CacheReplay
{
    /// <summary>Replays a trace token-major, within a step in listed order, after skipping its first tokens.</summary>
    public static CacheReplayResult Run(ICachePolicy cache, RoutingTrace trace, int skipTokens, Func<ExpertKey, long> size)
    {
        long time = 0, hits = 0, bytes = 0, missed = 0;
        for (int token = Math.Max(0, skipTokens); token < trace.Tokens; token++)
        {
            for (int layer = 0; layer < trace.Layers; layer++)
            {
                foreach (int expert in trace.Experts(token, layer))
                {
                    var key = new ExpertKey(layer, expert);
                    long s = size(key);
                    bytes += s;
                    if (cache.Access(key, s, time)) hits++;
                    else
                    {
                        missed += s;
                        cache.Admit(key, s, time, null);
                    }

                    time++;
                }
            }
        }

        return new CacheReplayResult(time, hits, bytes, missed);
    }

    /// <summary>Replays a flat request sequence with one size per request (or unit sizes when sizes is empty).</summary>
    public static CacheReplayResult Run(ICachePolicy cache, ReadOnlySpan<ExpertKey> requests, ReadOnlySpan<long> sizes = default)
    {
        if (!sizes.IsEmpty && sizes.Length != requests.Length)
            throw new ArgumentException($"{sizes.Length} sizes for {requests.Length} requests", nameof(sizes));
        long hits = 0, bytes = 0, missed = 0;
        for (int t = 0; t < requests.Length; t++)
        {
            long s = sizes.IsEmpty ? 1 : sizes[t];
            bytes += s;
            if (cache.Access(requests[t], s, t)) hits++;
            else
            {
                missed += s;
                cache.Admit(requests[t], s, t, null);
            }
        }

        return new CacheReplayResult(requests.Length, hits, bytes, missed);
    }
}
