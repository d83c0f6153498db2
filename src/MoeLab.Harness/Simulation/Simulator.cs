using System.Diagnostics;
using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;
using MoeLab.Strategies;

namespace MoeLab.Harness.Simulation;

/// <summary>What to replay and through which strategies; capacities are given per run.</summary>
public sealed record SimulationOptions
{
    public required RoutingTrace Trace { get; init; }

    /// <summary>Tokens dropped from the front (e.g. a prefill block).</summary>
    public int SkipTokens { get; init; }

    /// <summary>Tokens replayed (warming the cache) before the counters start; they count toward MaxTokens.</summary>
    public int WarmupTokens { get; init; }

    /// <summary>Replay at most this many tokens after the skipped ones (null = to the end of the trace).</summary>
    public int? MaxTokens { get; init; }

    public StrategySpec Cache { get; init; } = StrategySpec.Of("lru");

    public StrategySpec? Prefetch { get; init; }

    public CacheUnit Unit { get; init; } = CacheUnit.Experts;

    public CacheScope Scope { get; init; } = CacheScope.Global;

    /// <summary>Bytes of one routed expert; required for the bytes unit and for bytes read (null = count only).</summary>
    public long? ExpertBytes { get; init; }

    /// <summary>Device cost model; null = hit ratios and bytes only, no predicted times.</summary>
    public CostModel? Cost { get; init; }

    /// <summary>
    /// Page-cache mode (the OS page cache is the only cache, as with mmap'd weights): each layer's dense weights are
    /// an object in the same cache, requested before its experts, so they compete with the experts for RAM.
    /// Needs the bytes unit and a cost model (for the dense sizes).
    /// </summary>
    public bool DenseInCache { get; init; }

    /// <summary>Profiling trace for profile-driven policies (static-hot, layered-lru, transition).</summary>
    public RoutingTrace? Profile { get; init; }

    public bool RecordTokens { get; init; }

    /// <summary>Test seam: builds the cache instead of the catalog (the catalog is the only production path).</summary>
    public Func<StrategyContext, ICachePolicy>? CacheFactory { get; init; }

    public Func<StrategyContext, IPrefetcher>? PrefetchFactory { get; init; }
}

/// <summary>
/// Replays a routing trace through a cache policy and a prefetcher from the <see cref="StrategyCatalog"/> (the same
/// classes the engine drives) and charges a device <see cref="CostModel"/>. The replay loop allocates nothing
/// itself; scope (global / per-layer) and admission come from the catalog like every other policy parameter.
/// Timeline per layer, the engine's (MoeBlock.Forward with a StreamingExpertSource): the dense part runs, the router's
/// experts are looked up, the misses are queued as their slice reads (FIFO, <see cref="CostModel.QueueDepth"/> reader
/// threads, <see cref="DiskQueue"/>), the prefetcher's predictions queue behind them, then the experts are computed
/// in NextReady order (the first in routing order already in RAM, so hits first, else the next to arrive), so later
/// reads overlap earlier experts' compute; waiting is stall.
/// </summary>
public static class Simulator
{
    /// <summary>Replays at each capacity (in parallel: one independent replay per capacity).</summary>
    public static SimulationResult[] Curve(SimulationOptions o, IReadOnlyList<long> capacities, bool parallel = true)
    {
        var results = new SimulationResult[capacities.Count];
        if (parallel && capacities.Count > 1)
            Parallel.For(0, capacities.Count, i => results[i] = Run(o, capacities[i]));
        else
            for (int i = 0; i < capacities.Count; i++) results[i] = Run(o, capacities[i]);
        return results;
    }

    public static SimulationResult Run(SimulationOptions o, long capacity)
    {
        var trace = o.Trace;
        int L = trace.Layers, E = trace.ExpertsPerLayer;
        if (o.Unit == CacheUnit.Bytes && o.ExpertBytes is null) throw new ArgumentException("the bytes unit needs the size of an expert (give --model-preset)");
        if (o.DenseInCache && (o.Unit != CacheUnit.Bytes || o.Cost is null)) throw new ArgumentException("page-cache mode needs --unit bytes and a device profile with a model preset");
        if (capacity < 0) throw new ArgumentException($"capacity {capacity} is negative");
        int skip = Math.Min(o.SkipTokens, trace.Tokens);
        int end = o.MaxTokens is { } max ? Math.Min(trace.Tokens, skip + Math.Max(0, max)) : trace.Tokens;

        long expertSize = o.Unit == CacheUnit.Experts ? 1 : o.ExpertBytes!.Value;
        var shape = new ModelShape(L, E, MaxStep(trace), o.ExpertBytes ?? 1, 0);
        // Scope and admission are applied by the catalog around the policy (one code path with the engine).
        var cacheContext = new StrategyContext
        {
            Shape = shape, Capacity = capacity, Unit = o.Unit, Scope = o.Scope, Profile = o.Profile, Future = trace, FutureSkipTokens = skip,
        };
        var cache = o.CacheFactory?.Invoke(cacheContext) ?? StrategyCatalog.CreateCache(o.Cache, cacheContext);

        IPrefetcher? prefetcher = null;
        if (o.PrefetchFactory is not null || (o.Prefetch is { } ps && ps.Name != "none"))
        {
            var ctx = new StrategyContext
            {
                Shape = shape, Capacity = capacity, Unit = o.Unit, Scope = o.Scope, Profile = o.Profile, Future = trace, FutureSkipTokens = skip,
            };
            prefetcher = o.PrefetchFactory?.Invoke(ctx) ?? StrategyCatalog.CreatePrefetcher(o.Prefetch!, ctx);
        }

        var state = new ReplayState(L * E, L, MaxStep(trace));
        var perToken = o.RecordTokens ? new TokenRecord[end - skip] : null;
        var sw = Stopwatch.StartNew();
        Replay(o, cache, prefetcher, state, skip, end, expertSize, perToken);
        sw.Stop();

        long? expertBytes = o.ExpertBytes;
        return new SimulationResult
        {
            Capacity = capacity,
            Unit = o.Unit == CacheUnit.Experts ? "experts" : "bytes",
            Scope = o.Scope == CacheScope.Global ? "global" : "per-layer",
            Cache = o.Cache.ToString(),
            Prefetch = prefetcher is null ? "none" : o.Prefetch?.ToString() ?? prefetcher.Name,
            Tokens = Math.Max(0, end - skip - o.WarmupTokens),
            Requests = state.Hits + state.Misses,
            Hits = state.Hits,
            Misses = state.Misses,
            PrefetchHits = state.PrefetchHits,
            StorageCacheHits = o.Cost is { HasStorageCache: true } ? state.StorageCacheHits : null,
            LayerHits = state.LayerHits,
            LayerMisses = state.LayerMisses,
            LayerPrefetchHits = state.LayerPrefetchHits,
            PrefetchReads = state.PrefetchReads,
            PrefetchWasted = state.Wasted,
            Predictions = state.Predictions,
            PredictedDemands = state.PredictedDemands,
            PredictableDemands = state.PredictableDemands,
            BytesRead = expertBytes is null ? null : state.DemandBytes + state.PrefetchBytes + state.DenseBytes,
            DemandBytes = expertBytes is null ? null : state.DemandBytes,
            PrefetchBytes = expertBytes is null ? null : state.PrefetchBytes,
            ComputeSeconds = o.Cost is null ? null : state.Compute,
            IoSeconds = o.Cost is null ? null : state.Io,
            StallSeconds = o.Cost is null ? null : state.Stall,
            Profile = o.Cost?.ProfileName,
            PerToken = perToken,
            ReplaySeconds = sw.Elapsed.TotalSeconds,
        };
    }

    private static int MaxStep(RoutingTrace trace)
    {
        int k = 0;
        var s = trace.StepStarts;
        for (int i = 0; i + 1 < s.Length; i++) k = Math.Max(k, s[i + 1] - s[i]);
        return k;
    }

    /// <summary>Counters and per-expert flags of one replay; evictions clear the prefetch flag.</summary>
    private sealed class ReplayState(int keys, int layers, int maxStep) : IEvictionSink
    {
        public readonly long[] LayerHits = new long[layers];
        public readonly long[] LayerMisses = new long[layers];
        public readonly long[] LayerPrefetchHits = new long[layers];
        public readonly double[] ReadyAt = new double[keys];
        public readonly bool[] PrefetchedUnused = new bool[keys];
        public readonly bool[] Predicted = new bool[keys];
        public readonly int[] Batch = new int[keys];
        public readonly double[] StepReady = new double[maxStep]; // when each expert of the current step is in RAM
        public readonly int[] StepMissOrdinal = new int[maxStep]; // -1 hit, else its place in the step's miss batch
        public readonly bool[] StepDone = new bool[maxStep]; // computed already (the engine's NextReady loop)
        public int ExpertsPerLayer;
        public long Hits, Misses, PrefetchHits, PrefetchReads, Wasted, Predictions, PredictedDemands, PredictableDemands;
        public long DemandBytes, PrefetchBytes, DenseBytes, StorageCacheHits;
        public double Compute, Io, Stall;

        /// <summary>End of warm-up: the cache contents and flags stay, the counts start over.</summary>
        public void ResetCounters()
        {
            Hits = Misses = PrefetchHits = PrefetchReads = Wasted = Predictions = PredictedDemands = PredictableDemands = 0;
            DemandBytes = PrefetchBytes = DenseBytes = StorageCacheHits = 0;
            Compute = Io = Stall = 0;
            Array.Clear(LayerHits);
            Array.Clear(LayerMisses);
            Array.Clear(LayerPrefetchHits);
        }

        public void OnEvicted(ExpertKey key, long size)
        {
            if (key.Expert >= ExpertsPerLayer) return; // a dense block (page-cache mode)
            int idx = (key.Layer * ExpertsPerLayer) + key.Expert;
            if (PrefetchedUnused[idx])
            {
                PrefetchedUnused[idx] = false;
                Wasted++;
            }
        }
    }

    private static void Replay(SimulationOptions o, ICachePolicy cache, IPrefetcher? prefetcher, ReplayState s, int skip, int end, long expertSize, TokenRecord[]? perToken)
    {
        var trace = o.Trace;
        int L = trace.Layers, E = trace.ExpertsPerLayer;
        s.ExpertsPerLayer = E;
        var cost = o.Cost;
        long expertBytes = o.ExpertBytes ?? 0;
        double expertCompute = cost?.ExpertComputeSeconds ?? 0;
        double resume = cost?.ResumeAfterStallSeconds ?? 0;
        double densePerLayer = cost is null ? 0 : cost.DenseSecondsPerToken / L;
        long denseLayerBytes = cost is null ? 0 : cost.DenseBytesPerToken / L;
        var predictions = new ExpertKey[Math.Max(64, L * E)];
        bool predicting = false;
        long time = 0; // demand request counter: the index into Future.RequestSequence(skip) that belady/oracle read
        double now = 0, busyBefore = 0;
        var disk = cost?.NewDiskQueue();
        // Objects of the storage cache below the device: expert l·E + e, and in page-cache mode layer l's dense block L·E + l.
        var below = cost is { HasStorageCache: true } ? new StorageCache((L * E) + L, cost.StorageCacheBytes) : null;

        int measureFrom = skip + Math.Max(0, o.WarmupTokens);
        for (int t = skip; t < end; t++)
        {
            if (t == measureFrom && t > skip) s.ResetCounters();
            var tok = default(TokenRecord);
            for (int l = 0; l < L; l++)
            {
                if (o.DenseInCache)
                {
                    // The layer's dense weights are one more object (expert id E) in the same page cache.
                    var denseKey = new ExpertKey(l, E);
                    if (!cache.Access(denseKey, denseLayerBytes, time))
                    {
                        cache.Admit(denseKey, denseLayerBytes, time, s);
                        double ready = ReadObject(disk!, cost!, below, (L * E) + l, now, denseLayerBytes, 0, ref tok);
                        if (ready > now)
                        {
                            tok.StallSeconds += ready - now;
                            now = ready;
                        }

                        tok.BytesRead += denseLayerBytes;
                        s.DenseBytes += denseLayerBytes;
                    }
                }

                now += densePerLayer;
                tok.ComputeSeconds += densePerLayer;

                var ids = trace.Experts(t, l);
                var weights = trace.Weights(t, l);
                long missBytes = 0;
                int missCount = 0;
                for (int i = 0; i < ids.Length; i++)
                {
                    int idx = (l * E) + ids[i];
                    var key = new ExpertKey(l, ids[i]);
                    if (predicting)
                    {
                        s.PredictableDemands++;
                        if (s.Predicted[idx])
                        {
                            s.PredictedDemands++;
                            s.Predicted[idx] = false;
                        }
                    }

                    s.StepMissOrdinal[i] = -1;
                    s.StepReady[i] = now;
                    s.StepDone[i] = false;
                    if (cache.Access(key, expertSize, time))
                    {
                        tok.Hits++;
                        s.LayerHits[l]++;
                        if (s.PrefetchedUnused[idx])
                        {
                            s.PrefetchedUnused[idx] = false;
                            tok.PrefetchHits++;
                            s.LayerPrefetchHits[l]++;
                            s.StepReady[i] = Math.Max(now, s.ReadyAt[idx]);
                        }
                    }
                    else
                    {
                        tok.Misses++;
                        s.LayerMisses[l]++;
                        missBytes += expertBytes;
                        s.StepMissOrdinal[i] = missCount++;
                        cache.Admit(key, expertSize, time, s);
                    }

                    time++;
                }

                if (missBytes > 0)
                {
                    // The misses are queued at once in routing order, each as its slice reads; one is in RAM when its last lands.
                    for (int i = 0; i < ids.Length; i++)
                    {
                        int m = s.StepMissOrdinal[i];
                        if (m >= 0 && disk is not null) s.StepReady[i] = ReadObject(disk, cost!, below, (l * E) + ids[i], now, expertBytes, missCount - 1 - m, ref tok);
                    }

                    s.DemandBytes += missBytes;
                    tok.BytesRead += missBytes;
                }

                if (prefetcher is not null)
                {
                    var observed = new RoutingObservation { Token = t, Layer = l, Experts = ids, Weights = weights };
                    int n = prefetcher.Predict(observed, predictions);
                    predicting = true;
                    int batch = 0;
                    for (int i = 0; i < n; i++)
                    {
                        var key = predictions[i];
                        if ((uint)key.Layer >= (uint)L || (uint)key.Expert >= (uint)E) continue;
                        int idx = (key.Layer * E) + key.Expert;
                        if (!s.Predicted[idx])
                        {
                            s.Predicted[idx] = true;
                            s.Predictions++;
                        }

                        if (cache.Contains(key)) continue;
                        // time - 1: the last demand issued, so an offline policy sees the next demand as the future.
                        if (!cache.Admit(key, expertSize, time - 1, s)) continue;
                        s.PrefetchedUnused[idx] = true;
                        s.Batch[batch++] = idx;
                    }

                    // Queued behind the layer's misses (demand first), in prediction order.
                    // Served while the layer computes, so at the rate of reads beside the compute.
                    for (int i = 0; i < batch; i++) s.ReadyAt[s.Batch[i]] = disk is null ? now : ReadObject(disk, cost!, below, s.Batch[i], now, expertBytes, batch - 1 - i, ref tok, cost!.PrefetchReadSlowdown);
                    long bytes = batch * expertBytes;
                    s.PrefetchReads += batch;
                    s.PrefetchBytes += bytes;
                    tok.BytesRead += bytes;
                }

                // The engine's order (IExpertSource.NextReady): the first expert in routing order already in RAM (hits at
                // once), else the first to arrive; waiting for it is stall, and later reads overlap earlier experts' compute.
                for (int c = 0; c < ids.Length; c++)
                {
                    int pick = -1, first = -1;
                    for (int i = 0; i < ids.Length; i++)
                    {
                        if (s.StepDone[i]) continue;
                        if (s.StepReady[i] <= now)
                        {
                            pick = i;
                            break;
                        }

                        if (first < 0 || s.StepReady[i] < s.StepReady[first]) first = i;
                    }

                    if (pick < 0)
                    {
                        pick = first;
                        tok.StallSeconds += s.StepReady[pick] - now;
                        now = s.StepReady[pick];
                        // The compute threads slept through the stall: waking them is compute the engine's timers count.
                        now += resume;
                        tok.ComputeSeconds += resume;
                    }

                    s.StepDone[pick] = true;
                    now += expertCompute;
                }

                tok.ComputeSeconds += ids.Length * expertCompute;
            }

            if (disk is not null)
            {
                tok.IoSeconds = disk.BusySeconds - busyBefore;
                busyBefore = disk.BusySeconds;
            }

            s.Hits += tok.Hits;
            s.Misses += tok.Misses;
            s.PrefetchHits += tok.PrefetchHits;
            s.StorageCacheHits += tok.StorageCacheHits;
            s.Compute += tok.ComputeSeconds;
            s.Io += tok.IoSeconds;
            s.Stall += tok.StallSeconds;
            if (perToken is not null) perToken[t - skip] = tok;
        }
    }

    /// <summary>
    /// Queues an object's reads (ceil(bytes / block) equal requests) at <paramref name="at"/>; returns when the last lands.
    /// With a storage cache below the device, the object is served at the cache's rate when its range is resident there.
    /// </summary>
    private static double ReadObject(DiskQueue disk, CostModel cost, StorageCache? below, int id, double at, long bytes, int objectsBehind, ref TokenRecord tok, double slowdown = 1)
    {
        bool cached = below is not null && below.Read(id, bytes);
        if (cached) tok.StorageCacheHits++;
        int n = cost.ReadsFor(bytes);
        long each = bytes / n, extra = bytes % n;
        double ready = at;
        for (int r = 0; r < n; r++) ready = Math.Max(ready, disk.Read(at, each + (r < extra ? 1 : 0), (n - 1 - r) + (objectsBehind * n), cached, slowdown));
        return ready;
    }
}
