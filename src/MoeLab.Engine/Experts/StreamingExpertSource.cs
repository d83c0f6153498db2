using System.Diagnostics;
using System.Runtime.InteropServices;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Experts;

/// <summary>
/// Routed experts streamed from the model file under a RAM budget. The budget is one slab of equal expert buffers,
/// allocated once and reused: <see cref="BufferCount"/> = budget / buffer size, of which
/// <see cref="StreamingOptions.WorkingBuffers"/> serve experts in use that the cache does not hold and the rest hold
/// what the <see cref="ICachePolicy"/> keeps. <see cref="Request"/> queues every missing expert of the layer at once
/// (and the prefetcher's guesses behind them), so later experts load while earlier ones compute. An expert is pinned
/// from <see cref="Request"/> to <see cref="Release"/>: if the policy evicts it meanwhile, its buffer is reused only
/// after release.
/// </summary>
public sealed unsafe class StreamingExpertSource : IExpertSource, IExpertResidency, IDisposable
{
    private readonly object _gate = new();
    private readonly ExpertStore _store;
    private readonly ExpertLayout _layout;
    private readonly ICachePolicy _cache;
    private readonly IIoScheduler _scheduler;
    private readonly IPrefetcher? _prefetcher;
    private readonly IPrecisionPolicy? _precision;
    private readonly ExpertVariant[] _variants;
    private readonly Slot[] _slots;
    private readonly int[] _free;
    private readonly int[] _slotOf; // layer-major key index → slot, -1 when the expert has no buffer
    private readonly PendingRead[] _pending;
    private readonly int[] _pendingSlot;
    private readonly int[] _pendingTargetToken;
    private readonly ExpertKey[] _predictions;
    private readonly SemaphoreSlim _work = new(0);
    private readonly ExpertReaders _readers;
    private readonly int _workingBuffers;
    private readonly Evictions _evictions;
    private readonly ExpertLayerCounters _layerCounters;
    private byte* _slab;
    private int _freeCount;
    private int _pendingCount;
    private long _enqueued;
    private long _time;
    private int _token;
    private bool _disposed;

    private long _hits, _misses, _prefetchHits, _prefetchIssued, _prefetchUnused, _prefetchCancelled;
    private long _bytesRead, _bytesTransferred, _ioTicks, _busyTicks, _stallTicks;
    private long _demandQueueTicks, _demandReads, _idleIssueTicks, _idleIssues;
    private readonly int _prefetchDepth;
    private int _prefetchSlicesInFlight;
    private int _inFlight;
    private long _busySince;
    private ExpertReadLog? _readLog;
    private readonly bool _interleave;
    private int _repacking;
    private long _repackTicks;

    /// <param name="precision">
    /// Chooses among the store's variants per expert; null computes every expert at variant 0 (the file's own).
    /// A buffer holds one variant of an expert: the variant read is the policy's ComputeVariant, and it is cached
    /// when CacheVariant is not -1 (caching a different variant than the one computed would take a second read and
    /// is not done).
    /// </param>
    public StreamingExpertSource(ExpertStore store, StreamingOptions options, ICachePolicy cache, IIoScheduler scheduler, IPrefetcher? prefetcher = null, IPrecisionPolicy? precision = null)
    {
        _store = store;
        _layout = store.Layout;
        _cache = cache;
        _scheduler = scheduler;
        _prefetcher = prefetcher;
        _precision = precision;
        _variants = Describe(store);
        _workingBuffers = options.WorkingBuffers;
        _interleave = options.Interleave;
        _evictions = new Evictions(this);
        _layerCounters = new ExpertLayerCounters(_layout.Layers);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.WorkingBuffers, 1, nameof(options.WorkingBuffers));
        ArgumentOutOfRangeException.ThrowIfLessThan(scheduler.QueueDepth, 1, nameof(scheduler.QueueDepth));

        BudgetBytes = options.BudgetBytes;
        BufferBytes = store.BufferBytes;
        long count = options.BudgetBytes / BufferBytes;
        if (count < options.WorkingBuffers)
        {
            throw new ArgumentException($"a budget of {options.BudgetBytes} bytes holds {count} expert buffers of {BufferBytes} bytes; at least {options.WorkingBuffers} (the working buffers) are needed", nameof(options));
        }

        if (count > int.MaxValue / 2) throw new ArgumentException($"a budget of {options.BudgetBytes} bytes is {count} expert buffers; too many", nameof(options));
        BufferCount = (int)count;
        long maxCapacity = CacheCapacity(store, options);
        if (cache.Capacity > maxCapacity)
        {
            throw new ArgumentException($"cache policy '{cache.Name}' has capacity {cache.Capacity} bytes, but the budget leaves {BufferCount - options.WorkingBuffers} cache buffers = {maxCapacity} bytes of experts; build it with StreamingExpertSource.CacheCapacity(store, options)", nameof(cache));
        }

        _slots = new Slot[BufferCount];
        _free = new int[BufferCount];
        for (int i = 0; i < BufferCount; i++)
        {
            _slots[i].KeyIndex = -1;
            _free[i] = BufferCount - 1 - i;
        }

        _freeCount = BufferCount;
        _slotOf = new int[_layout.Layers * _layout.ExpertsPerLayer];
        _slotOf.AsSpan().Fill(-1);
        _pending = new PendingRead[BufferCount];
        _pendingSlot = new int[BufferCount];
        _pendingTargetToken = new int[BufferCount];
        _predictions = new ExpertKey[Math.Max(0, options.MaxPrefetchPerLayer)];
        _slab = WeightMemory.AllocateWithin(SlabBytes, ExpertStore.BufferAlignment, options.HugePages);
        _prefetchDepth = Math.Clamp(scheduler.PrefetchDepth, 1, scheduler.QueueDepth);
        _readers = new ExpertReaders(store, new ReadQueue(this), scheduler.QueueDepth, engine: options.ReadEngine);
    }

    private enum SlotState : byte
    {
        Free,
        Queued,
        Loading,
        Ready,
        Failed,
    }

    public long BudgetBytes { get; }

    /// <summary>Bytes of one expert buffer (the largest expert plus alignment padding).</summary>
    public long BufferBytes { get; }

    public int BufferCount { get; }

    /// <summary>Native bytes allocated for expert buffers: BufferCount × BufferBytes ≤ BudgetBytes.</summary>
    public long SlabBytes => BufferCount * BufferBytes;

    public ExpertStore Store => _store;

    /// <summary>Bytes of the slab in transparent huge pages now (<see cref="WeightMemory.HugePageBytesIn"/>; -1: unknown).</summary>
    public long SlabHugePageBytes => WeightMemory.HugePageBytesIn(_slab, SlabBytes);

    /// <summary>Bytes the cache policy may hold (what a replay of this run must give the same policy).</summary>
    public long CacheCapacityBytes => _cache.Capacity;

    /// <summary>Reads in flight at most (the I/O scheduler's queue depth).</summary>
    public int QueueDepth => _scheduler.QueueDepth;

    public IExpertEventSink? EventSink { get; set; }

    /// <summary>How reads are kept in flight (AIO asked for but unavailable runs threads).</summary>
    public MoeLab.Engine.Io.ReadEngine ReadEngine => _readers.Engine;

    public ExpertLayerCounters LayerCounters => _layerCounters;

    /// <summary>Most prefetch reads seen in flight at once (never above the scheduler's PrefetchDepth).</summary>
    public int PeakPrefetchReadsInFlight { get; private set; }

    /// <summary>When set, every read issued from now on is appended to it, in the order the readers take them (null stops recording).</summary>
    public ExpertReadLog? ReadLog
    {
        get
        {
            lock (_gate) return _readLog;
        }

        set
        {
            lock (_gate) _readLog = value;
        }
    }

    public ExpertSourceCounters Counters
    {
        get
        {
            lock (_gate)
            {
                long busy = _busyTicks + (_inFlight > 0 ? Stopwatch.GetTimestamp() - _busySince : 0);
                return new ExpertSourceCounters(_hits, _misses, _prefetchHits, _prefetchIssued, _prefetchUnused, _prefetchCancelled,
                    _bytesRead, _bytesTransferred, ExpertSourceCounters.Seconds(_ioTicks), ExpertSourceCounters.Seconds(busy), ExpertSourceCounters.Seconds(_stallTicks))
                {
                    DemandQueueSeconds = ExpertSourceCounters.Seconds(_demandQueueTicks),
                    DemandReads = _demandReads,
                    IdleIssueSeconds = ExpertSourceCounters.Seconds(_idleIssueTicks),
                    IdleIssues = _idleIssues,
                    RepackSeconds = ExpertSourceCounters.Seconds(_repackTicks),
                };
            }
        }
    }

    /// <summary>
    /// The cache capacity in bytes a policy for this budget must have (at most): the cache buffers times the smallest
    /// expert, so the policy can never hold more experts than there are cache buffers.
    /// </summary>
    public static long CacheCapacity(ExpertStore store, StreamingOptions options)
    {
        long buffers = (options.BudgetBytes / store.BufferBytes) - options.WorkingBuffers;
        long min = long.MaxValue;
        foreach (var layout in store.Variants) min = Math.Min(min, MinExpertBytes(layout));
        return Math.Max(0, buffers) * min;
    }

    /// <summary>The stored precisions as a precision policy sees them.</summary>
    public ReadOnlySpan<ExpertVariant> Variants => _variants;

    public void BeginToken(int token)
    {
        lock (_gate) _token = token;
    }

    public void Request(in RoutingObservation observed)
    {
        var experts = observed.Experts;
        if (experts.Length > _workingBuffers)
        {
            throw new ArgumentException($"layer {observed.Layer} routes {experts.Length} experts but the source has {_workingBuffers} working buffers; raise StreamingOptions.WorkingBuffers");
        }

        int slices = 0;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _token = observed.Token;
            if (_scheduler.CancelStalePrefetches) CancelStale(observed.Token, observed.Layer);
            for (int i = 0; i < experts.Length; i++)
            {
                slices += Demand(observed.Layer, experts[i], i < observed.Weights.Length ? observed.Weights[i] : float.NaN);
            }

            // Readers held back by the prefetch depth wait on the gate: let them take the demand reads.
            // (also when a demand only promoted a queued prefetch: it may be the read a held-back reader should take)
            if (_prefetchDepth < QueueDepth) Monitor.PulseAll(_gate);
        }

        if (slices > 0) _work.Release(slices);
        if (_prefetcher is null || _predictions.Length == 0) return;

        // Outside the lock: a prefetcher may run a router matvec, and the readers should not wait for it.
        int n = Math.Min(_prefetcher.Predict(observed, _predictions), _predictions.Length);
        slices = 0;
        lock (_gate)
        {
            for (int i = 0; i < n; i++) slices += Prefetch(_predictions[i], observed.Token, observed.Layer);
        }

        if (slices > 0) _work.Release(slices);
    }

    public int NextReady(int layer, ReadOnlySpan<int> experts, ReadOnlySpan<bool> done) => AwaitServable(layer, experts, done, []);

    public int ReadyExperts(int layer, ReadOnlySpan<int> experts, ReadOnlySpan<bool> done, Span<bool> ready)
    {
        ready.Clear();
        return AwaitServable(layer, experts, done, ready);
    }

    /// <summary>
    /// Blocks until a requested expert not yet <paramref name="done"/> is servable (ready, or not requested, or failed:
    /// Acquire serves or reports it). With no <paramref name="ready"/> span returns the first in routing order
    /// (NextReady); otherwise marks every servable one and returns how many (ReadyExperts). A wait is the stall of each
    /// expert handed out after it, and counts once in the total.
    /// </summary>
    private int AwaitServable(int layer, ReadOnlySpan<int> experts, ReadOnlySpan<bool> done, Span<bool> ready)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long t0 = 0;
            while (true)
            {
                long waited = t0 == 0 ? 0 : Stopwatch.GetTimestamp() - t0;
                int count = 0, pending = 0;
                bool stalled = false;
                for (int j = 0; j < experts.Length; j++)
                {
                    if (done[j]) continue;
                    int s = _slotOf[KeyIndex(layer, experts[j])];
                    if (!Servable(s))
                    {
                        pending++;
                        continue;
                    }

                    if (t0 != 0 && s >= 0)
                    {
                        _slots[s].StallTicks = waited;
                        stalled = true;
                    }

                    if (ready.IsEmpty)
                    {
                        if (stalled) _stallTicks += waited;
                        return j;
                    }

                    ready[j] = true;
                    count++;
                }

                if (count > 0)
                {
                    _stallTicks += waited;
                    return count;
                }

                if (pending == 0) throw new InvalidOperationException($"layer {layer}: every requested expert is already computed");
                if (t0 == 0) t0 = Stopwatch.GetTimestamp();
                Monitor.Wait(_gate);
            }
        }
    }

    /// <summary>Whether Acquire can serve the expert in slot <paramref name="s"/> without waiting (ready, failed: Acquire reports it, or not requested).</summary>
    private bool Servable(int s) => s < 0 || _slots[s].Pins == 0 || _slots[s].State is SlotState.Ready or SlotState.Failed;

    public ExpertWeights Acquire(int layer, int expert)
    {
        ExpertEvent ev = default;
        bool report = false;
        ExpertWeights weights;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            int k = KeyIndex(layer, expert);
            int s = _slotOf[k];
            if (s < 0 || _slots[s].Pins == 0)
            {
                // Not requested: serve it anyway, as a request of one.
                int slices = Demand(layer, expert, float.NaN);
                if (slices > 0) _work.Release(slices);
                s = _slotOf[k];
            }

            ref var slot = ref _slots[s];
            if (slot.State is SlotState.Queued or SlotState.Loading)
            {
                long t0 = Stopwatch.GetTimestamp();
                while (slot.State is SlotState.Queued or SlotState.Loading) Monitor.Wait(_gate);
                slot.StallTicks = Stopwatch.GetTimestamp() - t0;
                _stallTicks += slot.StallTicks;
            }

            if (slot.State == SlotState.Failed)
            {
                throw new IOException($"{_layout.Path}: reading expert L{layer}/E{expert} failed: {slot.Error?.Message}", slot.Error);
            }

            if (!slot.Reported)
            {
                slot.Reported = true;
                report = EventSink is not null;
                bool read = slot.Outcome != ExpertOutcome.Hit;
                ev = new ExpertEvent(_token, layer, expert, slot.Weight, slot.Outcome, slot.Variant,
                    read ? _store.Variants[slot.Variant][layer, expert].Bytes : 0, read ? slot.Transferred : 0,
                    read ? ExpertSourceCounters.Seconds(slot.ReadTicks) * 1e6 : 0, ExpertSourceCounters.Seconds(slot.StallTicks) * 1e6);
            }

            weights = WithLayouts(_store.View(slot.Variant, layer, expert, Buffer(s)), slot.Interleaved);
        }

        if (report) EventSink?.OnExpert(ev);
        return weights;
    }

    public void Release(int layer, int expert)
    {
        lock (_gate)
        {
            int s = _slotOf[KeyIndex(layer, expert)];
            if (s < 0 || _slots[s].Pins == 0)
            {
                throw new InvalidOperationException($"expert L{layer}/E{expert} released but not requested or acquired");
            }

            ref var slot = ref _slots[s];
            slot.Pins--;
            if (slot.Pins == 0 && !slot.InCache && slot.State is SlotState.Ready or SlotState.Failed) Free(s);
        }
    }

    public bool IsResident(ExpertKey key)
    {
        lock (_gate)
        {
            int s = _slotOf[KeyIndex(key.Layer, key.Expert)];
            return s >= 0 && _slots[s].State == SlotState.Ready;
        }
    }

    /// <summary>Blocks until no read is queued or in flight (prefetches included): for tests and end-of-run totals.</summary>
    public void WaitIdle()
    {
        lock (_gate)
        {
            while (_pendingCount > 0 || _inFlight > 0 || _repacking > 0) Monitor.Wait(_gate);
        }
    }

    /// <summary>The source's own accounting, checked: for tests and for a run's final report.</summary>
    public StreamingAccounting Accounting()
    {
        lock (_gate)
        {
            int occupied = 0, pinned = 0, cached = 0, orphans = 0;
            for (int s = 0; s < _slots.Length; s++)
            {
                ref var slot = ref _slots[s];
                if (slot.State == SlotState.Free)
                {
                    if (slot.KeyIndex != -1 || slot.Pins != 0) throw new InvalidOperationException($"free buffer {s} still names an expert");
                    continue;
                }

                occupied++;
                if (_slotOf[slot.KeyIndex] != s) throw new InvalidOperationException($"buffer {s} and the expert index disagree");
                if (slot.Pins > 0) pinned++;
                if (slot.InCache) cached++;
                if (slot.Pins == 0 && !slot.InCache)
                {
                    if (slot.State != SlotState.Loading) throw new InvalidOperationException($"buffer {s} ({slot.State}) is neither cached, pinned nor loading");
                    orphans++;
                }
            }

            if (occupied != BufferCount - _freeCount) throw new InvalidOperationException($"{occupied} buffers occupied but {BufferCount - _freeCount} off the free list");
            if (cached != _cache.Count) throw new InvalidOperationException($"{cached} buffers cached but policy '{_cache.Name}' holds {_cache.Count}");
            if (_cache.Used > _cache.Capacity) throw new InvalidOperationException($"policy '{_cache.Name}' uses {_cache.Used} of {_cache.Capacity} bytes");
            return new StreamingAccounting(BudgetBytes, SlabBytes, BufferCount, occupied, cached, pinned, orphans, _cache.Used, _cache.Capacity);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            Monitor.PulseAll(_gate);
        }

        _work.Release(_readers.Depth);
        _readers.Dispose();
        WeightMemory.Free(_slab);
        _slab = null;
        _work.Dispose();
    }

    private static long MinExpertBytes(ExpertLayout layout)
    {
        long min = long.MaxValue;
        for (int l = 0; l < layout.Layers; l++)
        {
            for (int e = 0; e < layout.ExpertsPerLayer; e++) min = Math.Min(min, layout[l, e].Bytes);
        }

        return min;
    }

    private static ExpertVariant[] Describe(ExpertStore store)
    {
        var variants = new ExpertVariant[store.Variants.Count];
        for (int v = 0; v < variants.Length; v++)
        {
            var layout = store.Variants[v];
            ref readonly var x = ref layout[0, 0];
            long weights = ((long)x.Gate.Rows * x.Gate.Cols) + ((long)x.Up.Rows * x.Up.Cols) + ((long)x.Down.Rows * x.Down.Cols);
            string type = x.Gate.Type == x.Down.Type ? x.Gate.Type.ToString() : $"{x.Gate.Type}/{x.Down.Type}";
            variants[v] = new ExpertVariant(v, type, x.Bytes * 8.0 / weights, layout.MaxExpertBytes);
        }

        return variants;
    }

    private byte* Buffer(int slot) => _slab + ((long)slot * BufferBytes);

    private int KeyIndex(int layer, int expert)
    {
        if ((uint)layer >= (uint)_layout.Layers || (uint)expert >= (uint)_layout.ExpertsPerLayer)
        {
            throw new ArgumentOutOfRangeException(nameof(expert), $"expert L{layer}/E{expert} outside {_layout.Layers} layers × {_layout.ExpertsPerLayer} experts");
        }

        return (layer * _layout.ExpertsPerLayer) + expert;
    }

    /// <summary>A demand for one expert; pins it and queues its read if absent. Returns the slice reads queued.</summary>
    private int Demand(int layer, int expert, float weight)
    {
        int k = KeyIndex(layer, expert);
        var key = new ExpertKey(layer, expert);
        int s = _slotOf[k];
        int variant = 0;
        bool cacheIt = true;
        if (_precision is not null)
        {
            var choice = _precision.Choose(key, weight, s >= 0 ? _slots[s].Variant : -1, _variants);
            if ((uint)choice.ComputeVariant >= (uint)_variants.Length)
            {
                throw new InvalidOperationException($"precision policy '{_precision.Name}' chose variant {choice.ComputeVariant} of {_variants.Length}");
            }

            variant = choice.ComputeVariant;
            cacheIt = choice.CacheVariant >= 0;
            if (s >= 0 && _slots[s].Variant != variant && _slots[s].Pins == 0 && _slots[s].State is SlotState.Ready or SlotState.Failed)
            {
                // Held at another precision than wanted now: drop it and read the wanted one.
                if (_slots[s].InCache) _cache.Remove(key);
                if (_slots[s].Prefetched) _prefetchUnused++;
                Free(s);
                s = -1;
            }
        }

        long size = _store.Variants[s >= 0 ? _slots[s].Variant : variant][layer, expert].Bytes;
        _time++;
        bool cacheHit = _cache.Access(key, size, _time);
        if (s >= 0)
        {
            ref var slot = ref _slots[s];
            Debug.Assert(cacheHit == slot.InCache, "policy and buffers disagree on residency");
            slot.Pins++;
            slot.Weight = weight;
            slot.Reported = false;
            slot.StallTicks = 0;
            if (slot.Prefetched)
            {
                slot.Prefetched = false;
                slot.Outcome = ExpertOutcome.PrefetchHit;
                _prefetchHits++;
                _layerCounters.Count(layer, ExpertOutcome.PrefetchHit);
            }
            else
            {
                // Includes an expert evicted but still in its buffer (pinned or loading): no read is needed.
                slot.Outcome = ExpertOutcome.Hit;
                _hits++;
                _layerCounters.Count(layer, ExpertOutcome.Hit);
            }

            if (slot.State == SlotState.Queued) PromoteToDemand(s);
            if (!slot.InCache) slot.InCache = _cache.Admit(key, size, _time, _evictions);
            return 0;
        }

        _misses++;
        _layerCounters.Count(layer, ExpertOutcome.Miss);
        bool admitted = cacheIt && _cache.Admit(key, size, _time, _evictions);
        s = TakeFreeBuffer(wait: true);
        ref var fresh = ref _slots[s];
        fresh = default;
        fresh.KeyIndex = k;
        fresh.Layer = layer;
        fresh.Expert = expert;
        fresh.Variant = variant;
        fresh.State = SlotState.Queued;
        fresh.Pins = 1;
        fresh.InCache = admitted;
        fresh.Weight = weight;
        fresh.Outcome = ExpertOutcome.Miss;
        fresh.Reads = fresh.SlicesToIssue = _store.Reads(variant, layer, expert);
        fresh.DemandAt = Stopwatch.GetTimestamp();
        fresh.IdleAtDemand = _inFlight == 0 && _pendingCount == 0;
        _slotOf[k] = s;
        Enqueue(s, key, IoPriority.Demand, _token, size);
        return fresh.Reads;
    }

    /// <summary>A prefetcher's guess: read it into the cache if the policy admits it and a buffer is free now.</summary>
    private int Prefetch(ExpertKey key, int token, int layer)
    {
        if ((uint)key.Layer >= (uint)_layout.Layers || (uint)key.Expert >= (uint)_layout.ExpertsPerLayer) return 0;
        int k = (key.Layer * _layout.ExpertsPerLayer) + key.Expert;
        if (_slotOf[k] >= 0) return 0;
        int variant = 0;
        if (_precision is not null)
        {
            var choice = _precision.Choose(key, float.NaN, -1, _variants);
            if ((uint)choice.ComputeVariant >= (uint)_variants.Length || choice.CacheVariant < 0) return 0;
            variant = choice.ComputeVariant;
        }

        long size = _store.Variants[variant][key.Layer, key.Expert].Bytes;
        if (!_cache.Admit(key, size, _time, _evictions)) return 0;
        int s = TakeFreeBuffer(wait: false);
        if (s < 0)
        {
            _cache.Remove(key);
            return 0;
        }

        ref var slot = ref _slots[s];
        slot = default;
        slot.KeyIndex = k;
        slot.Layer = key.Layer;
        slot.Expert = key.Expert;
        slot.Variant = variant;
        slot.State = SlotState.Queued;
        slot.InCache = true;
        slot.Prefetched = true;
        slot.PrefetchRead = true;
        slot.Reads = slot.SlicesToIssue = _store.Reads(variant, key.Layer, key.Expert);
        _slotOf[k] = s;

        // A guess for a later layer is for this token; for this or an earlier layer, for the next one.
        Enqueue(s, key, IoPriority.Prefetch, key.Layer > layer ? token : token + 1, size);
        return slot.Reads;
    }

    private int TakeFreeBuffer(bool wait)
    {
        while (_freeCount == 0)
        {
            if (!wait) return -1;
            bool willFree = false;
            foreach (ref readonly var slot in _slots.AsSpan())
            {
                willFree |= slot.State == SlotState.Loading && slot.Pins == 0 && !slot.InCache;
            }

            if (!willFree)
            {
                throw new InvalidOperationException($"all {BufferCount} expert buffers are cached or pinned; were the previous layer's experts released?");
            }

            long t0 = Stopwatch.GetTimestamp();
            Monitor.Wait(_gate);
            _stallTicks += Stopwatch.GetTimestamp() - t0;
        }

        return _free[--_freeCount];
    }

    private void Free(int s)
    {
        ref var slot = ref _slots[s];
        _slotOf[slot.KeyIndex] = -1;
        slot = default;
        slot.KeyIndex = -1;
        _free[_freeCount++] = s;
        Monitor.PulseAll(_gate);
    }

    private void Enqueue(int s, ExpertKey key, IoPriority priority, int targetToken, long bytes)
    {
        int i = _pendingCount++;
        _pending[i] = new PendingRead(key, priority, _enqueued++, bytes);
        _pendingSlot[i] = s;
        _pendingTargetToken[i] = targetToken;
        _slots[s].QueuedAt = Stopwatch.GetTimestamp();
    }

    private void RemovePendingAt(int i)
    {
        // Shift, not swap: order-sensitive schedulers may read positions.
        int tail = _pendingCount - i - 1;
        Array.Copy(_pending, i + 1, _pending, i, tail);
        Array.Copy(_pendingSlot, i + 1, _pendingSlot, i, tail);
        Array.Copy(_pendingTargetToken, i + 1, _pendingTargetToken, i, tail);
        _pendingCount--;
    }

    private int PendingIndexOf(int s) => _pendingSlot.AsSpan(0, _pendingCount).IndexOf(s);

    private void PromoteToDemand(int s)
    {
        int i = PendingIndexOf(s);
        if (i >= 0) _pending[i] = _pending[i] with { Priority = IoPriority.Demand };
        ref var slot = ref _slots[s];
        if (slot.SlicesToIssue == slot.Reads) slot.DemandAt = Stopwatch.GetTimestamp(); // not started: it now waits as a demand
    }

    /// <summary>Drops queued, unstarted prefetches whose target (token, layer) is already behind (token, layer).</summary>
    private void CancelStale(int token, int layer)
    {
        for (int i = _pendingCount - 1; i >= 0; i--)
        {
            int s = _pendingSlot[i];
            ref var slot = ref _slots[s];
            if (_pending[i].Priority != IoPriority.Prefetch || slot.SlicesToIssue != slot.Reads || slot.Pins != 0) continue;
            int targetToken = _pendingTargetToken[i];
            if (targetToken > token || (targetToken == token && slot.Layer >= layer)) continue;
            RemovePendingAt(i);
            _prefetchCancelled++;
            if (slot.InCache) _cache.Remove(new ExpertKey(slot.Layer, slot.Expert));
            Free(s);
        }
    }

    private void OnEvicted(ExpertKey key)
    {
        int s = _slotOf[(key.Layer * _layout.ExpertsPerLayer) + key.Expert];
        if (s < 0) return;
        ref var slot = ref _slots[s];
        slot.InCache = false;
        if (slot.Pins > 0) return; // in use: the buffer is reused after Release
        if (slot.State == SlotState.Queued)
        {
            int i = PendingIndexOf(s);
            if (i >= 0 && slot.SlicesToIssue == slot.Reads)
            {
                RemovePendingAt(i);
                _prefetchCancelled++;
                Free(s);
                return;
            }
        }

        if (slot.State is SlotState.Ready or SlotState.Failed)
        {
            if (slot.Prefetched) _prefetchUnused++;
            Free(s);
        }

        // Loading (or a partly issued read): freed when its last slice lands.
    }

    private bool Take(out SliceRead read) => Take(blocking: true, out read, out _);

    /// <summary>The next read the scheduler picks; when not <paramref name="blocking"/>, false (with <paramref name="stop"/> unset) if none is waiting.</summary>
    private bool Take(bool blocking, out SliceRead read, out bool stop)
    {
        stop = false;
        while (true)
        {
            if (!blocking && !_work.Wait(0))
            {
                read = default;
                return false;
            }

            if (blocking) _work.Wait();
            lock (_gate)
            {
                if (_disposed)
                {
                    read = default;
                    stop = true;
                    return false;
                }

                if (_pendingCount == 0) continue; // a cancelled read's wake-up
                int i = _scheduler.PickNext(new ReadOnlySpan<PendingRead>(_pending, 0, _pendingCount));
                if ((uint)i >= (uint)_pendingCount)
                {
                    throw new InvalidOperationException($"I/O scheduler '{_scheduler.Name}' picked {i} of {_pendingCount} pending reads");
                }

                bool prefetch = _pending[i].Priority == IoPriority.Prefetch;
                if (prefetch && _prefetchSlicesInFlight >= _prefetchDepth)
                {
                    // Keep the rest of the depth for demand reads: wait (still owning this wake-up) for a prefetch to
                    // land or a demand to arrive; a non-blocking reader hands the wake-up back and tries later.
                    if (!blocking)
                    {
                        _work.Release();
                        read = default;
                        return false;
                    }

                    Monitor.Wait(_gate);
                    _work.Release(); // re-enter through the semaphore so the pending count and wake-ups stay paired
                    continue;
                }

                int s = _pendingSlot[i];
                ref var slot = ref _slots[s];
                int slice = slot.Reads - slot.SlicesToIssue;
                slot.SlicesToIssue--;
                slot.SlicesInFlight++;
                if (slice == 0)
                {
                    long now = Stopwatch.GetTimestamp();
                    slot.State = SlotState.Loading;
                    slot.IssuedAt = now;
                    if (slot.PrefetchRead) _prefetchIssued++;
                    if (_inFlight++ == 0) _busySince = now;
                    if (slot.DemandAt != 0)
                    {
                        _demandQueueTicks += now - slot.DemandAt;
                        _demandReads++;
                        if (slot.IdleAtDemand)
                        {
                            _idleIssueTicks += now - slot.DemandAt;
                            _idleIssues++;
                        }
                    }
                }

                if (slot.SlicesToIssue == 0) RemovePendingAt(i);
                byte* buffer = Buffer(s);
                int logEntry = 0;
                if (_readLog is not null)
                {
                    var target = _store.Target(slot.Variant, slot.Layer, slot.Expert, slice, buffer);
                    logEntry = _readLog.Record(target.File.Path, target.Start, target.Length, Stopwatch.GetTimestamp(), slot.QueuedAt, prefetch) + 1;
                }

                if (prefetch) PeakPrefetchReadsInFlight = Math.Max(PeakPrefetchReadsInFlight, ++_prefetchSlicesInFlight);
                read = new SliceRead(s, slot.Variant, slot.Layer, slot.Expert, slice, buffer) { LogEntry = logEntry, Prefetch = prefetch };

                return true;
            }
        }
    }

    private void Completed(in SliceRead read, long transferred, long end, Exception? error)
    {
        int variant, layer, expert;
        lock (_gate)
        {
            if (read.LogEntry > 0) _readLog?.Complete(read.LogEntry - 1, end);
            if (read.Prefetch)
            {
                // A reader held back by the prefetch depth may go now, even if this was not the expert's last read.
                _prefetchSlicesInFlight--;
                if (_prefetchDepth < QueueDepth) Monitor.PulseAll(_gate);
            }

            ref var slot = ref _slots[read.Tag];
            slot.SlicesInFlight--;
            slot.Transferred += transferred;
            if (error is not null) slot.Error ??= error;
            if (slot.SlicesToIssue != 0 || slot.SlicesInFlight != 0) return;

            slot.ReadTicks = end - slot.IssuedAt;
            if (--_inFlight == 0) _busyTicks += end - _busySince;
            if (slot.Error is null)
            {
                _ioTicks += slot.ReadTicks;
                _bytesRead += _store.Variants[slot.Variant][slot.Layer, slot.Expert].Bytes;
                _bytesTransferred += slot.Transferred;
            }

            if (slot.Error is not null || !_interleave)
            {
                Landed(read.Tag, 0);
                return;
            }

            // Repacked outside the lock: the slot stays Loading with no read left, which nothing else touches.
            variant = slot.Variant;
            layer = slot.Layer;
            expert = slot.Expert;
            _repacking++;
        }

        long t0 = Stopwatch.GetTimestamp();
        byte layouts = 0;
        Exception? failed = null;
        try
        {
            layouts = Interleave(_store.View(variant, layer, expert, Buffer(read.Tag)));
        }
        catch (Exception e)
        {
            failed = e;
        }

        long t1 = Stopwatch.GetTimestamp();
        lock (_gate)
        {
            _repacking--;
            _repackTicks += t1 - t0;
            if (failed is not null) _slots[read.Tag].Error = failed;
            Landed(read.Tag, layouts);
        }
    }

    /// <summary>An expert's reads (and repack) are done: Ready or Failed, freed if nobody wants it. Under the lock.</summary>
    private void Landed(int s, byte layouts)
    {
        ref var slot = ref _slots[s];
        slot.Interleaved = layouts;
        if (slot.Error is null)
        {
            slot.State = SlotState.Ready;
        }
        else
        {
            slot.State = SlotState.Failed;
            if (slot.InCache)
            {
                slot.InCache = false;
                _cache.Remove(new ExpertKey(slot.Layer, slot.Expert));
            }
        }

        if (slot.Pins == 0 && !slot.InCache)
        {
            if (slot.Prefetched) _prefetchUnused++;
            Free(s);
        }

        Monitor.PulseAll(_gate);
    }

    /// <summary>Repacks in place the matrices with an interleaved kernel; bit i set: matrix i (gate, up, down) is interleaved.</summary>
    private static byte Interleave(in ExpertWeights e) => (byte)(Repacked(e.Gate) | (Repacked(e.Up) << 1) | (Repacked(e.Down) << 2));

    private static int Repacked(in WeightMatrix m) => RowInterleave.InterleaveIfWorthwhile(m).Layout == WeightLayout.Interleaved8 ? 1 : 0;

    /// <summary>The view of a buffer's expert in the layout its matrices were left in (<see cref="Interleave"/>'s bits).</summary>
    private static ExpertWeights WithLayouts(in ExpertWeights e, byte layouts) => layouts == 0 ? e :
        new ExpertWeights(InLayout(e.Gate, (layouts & 1) != 0), InLayout(e.Up, (layouts & 2) != 0), InLayout(e.Down, (layouts & 4) != 0));

    private static WeightMatrix InLayout(in WeightMatrix m, bool interleaved) =>
        interleaved ? new WeightMatrix(m.Type, m.Rows, m.Cols, m.Data, WeightLayout.Interleaved8) : m;

    private struct Slot
    {
        public int KeyIndex;
        public int Layer;
        public int Expert;
        public SlotState State;
        public int Variant;        // which stored precision the buffer holds
        public int Pins;           // requested and not yet released
        public bool InCache;       // the cache policy holds it
        public bool Prefetched;    // brought in by a prefetch and not yet demanded
        public bool PrefetchRead;  // its read was started by a prefetcher (even if demanded since)
        public int Reads;          // positional reads this expert takes (ExpertStore.Reads)
        public int SlicesToIssue;
        public int SlicesInFlight;
        public long Transferred;
        public long IssuedAt;
        public long QueuedAt;      // when its read was queued (ReadDepthProfile: reads waiting for a reader)
        public long DemandAt;      // when a router asked for it while its read had not started (0: never)
        public bool IdleAtDemand;  // no read was queued or in flight then
        public long ReadTicks;
        public long StallTicks;
        public float Weight;
        public ExpertOutcome Outcome;
        public bool Reported;
        public byte Interleaved;   // matrices repacked on arrival (StreamingExpertSource.Interleave's bits)
        public Exception? Error;
    }

    /// <summary>The policy reports victims here while the source holds its lock (one instance: no allocation per Admit).</summary>
    private sealed class Evictions(StreamingExpertSource owner) : IEvictionSink
    {
        public void OnEvicted(ExpertKey key, long size) => owner.OnEvicted(key);
    }

    private sealed class ReadQueue(StreamingExpertSource owner) : ISliceReadQueue
    {
        public bool Take(out SliceRead read) => owner.Take(out read);

        public bool TryTake(out SliceRead read, out bool stop) => owner.Take(blocking: false, out read, out stop);

        public void Completed(in SliceRead read, long transferred, long startTimestamp, long endTimestamp, Exception? error) =>
            owner.Completed(read, transferred, endTimestamp, error);
    }
}

/// <summary>A checked snapshot of a streaming source's RAM accounting.</summary>
public readonly record struct StreamingAccounting(
    long BudgetBytes,
    long SlabBytes,
    int Buffers,
    int Occupied,
    int Cached,
    int Pinned,
    int Orphans,
    long CacheUsedBytes,
    long CacheCapacityBytes);
