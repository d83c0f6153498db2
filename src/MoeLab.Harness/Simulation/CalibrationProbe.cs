using System.Diagnostics;
using System.Globalization;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Model;
using MoeLab.Engine.Sampling;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// What <c>calibrate --check</c> measures right before and right after the engine run, for a device profile of this
/// machine at that moment: the model file's own expert slices read with O_DIRECT through the engine's
/// <see cref="ExpertStore"/> by as many reader threads as the engine uses (and fewer), the engine's expert
/// computation (gate/up matvec, SwiGLU, down matvec) over the file's own experts, its matvec over the file's dense
/// tensors, and the sampler over a vocabulary of logits. Microbenchmarks, not the engine run: the prediction built
/// from them does not see the run's own timings. On a VM the CPUs are shared and the virtual disk may sit on a host
/// cache that O_DIRECT does not bypass (docs/benchmarks.md shows how to detect it), so figures taken minutes earlier by
/// <c>moelab calibrate</c> can be off by more than the ±15% the check asks for; the probe's random slices also miss
/// that cache where the engine's re-reads hit it.
/// </summary>
public static class CalibrationProbe
{
    public sealed record Options
    {
        /// <summary>Reader threads the engine uses; the probe measures depths 1, 2, …, up to it (powers of two and itself).</summary>
        public int QueueDepth { get; init; } = 4;

        public int Threads { get; init; }

        public double SecondsPerPoint { get; init; } = 0.6;

        public SamplerOptions Sampling { get; init; } = new();

        /// <summary>The engine's read chunk size (EngineSettings.ReadChunkBytes; 0 = one read per slice).</summary>
        public long ReadChunkBytes { get; init; }

        /// <summary>
        /// Read sizes (KiB) of a block-size sweep after the slice-size points (plain <c>moelab calibrate</c>; empty for the
        /// check's probes): aligned O_DIRECT ranges of the file's expert region in the same bursts, for models whose slices
        /// are another size.
        /// </summary>
        public IReadOnlyList<int> SweepBlockKib { get; init; } = [];
    }

    /// <summary>One probe: read points at the file's slice sizes, compute throughputs, per-token overhead, and when.</summary>
    public sealed record Figures
    {
        /// <summary>The device's rate: the whole-file reads with a storage cache's share taken out (as read when there is none).</summary>
        public required IReadOnlyList<DeviceProfile.ReadPoint> Reads { get; init; }

        /// <summary>Points of the block-size sweep (<see cref="Options.SweepBlockKib"/>) at every depth; empty when none was taken.</summary>
        public IReadOnlyList<DeviceProfile.ReadPoint> SweepReads { get; init; } = [];

        /// <summary>The sweep's raw reads at the slice size, beside <see cref="FileReads"/> (a check of the sweep's method, not stored).</summary>
        public IReadOnlyList<DeviceProfile.ReadPoint> SweepAtSlice { get; init; } = [];

        /// <summary>Random reads over the whole file's experts, as measured.</summary>
        public IReadOnlyList<DeviceProfile.ReadPoint> FileReads { get; init; } = [];

        /// <summary>Random reads over a small warmed set of experts (1/32 of them): the rate of a storage cache below the device.</summary>
        public IReadOnlyList<DeviceProfile.ReadPoint> CachedReads { get; init; } = [];

        /// <summary>The storage cache <see cref="StorageCacheFit"/> inferred from <see cref="Sweep"/>; 0 = none.</summary>
        public long StorageCacheBytes { get; init; }

        /// <summary>The sampler's time per token: reported, not charged (the engine's decode time is its forward passes only).</summary>
        public double SamplerMs { get; init; }

        /// <summary>The whole-file reads came in bursts of this many (one layer's reads), this far apart (its compute time).</summary>
        public int BurstReads { get; init; }

        public double BurstGapMs { get; init; }

        /// <summary>Decode steps the forward-pass probe timed.</summary>
        public int ForwardTokens { get; init; }

        /// <summary>Region-size sweep at the engine's depth: (region bytes, mean seconds per read), ascending.</summary>
        public IReadOnlyList<(long RegionBytes, double Seconds)> Sweep { get; init; } = [];

        /// <summary>Mean wake-up of an idle reader thread (SemaphoreSlim, as the engine's) while the decode steps ran, µs.</summary>
        public double ReaderWakeUs { get; init; }

        public required double ExpertGbPerS { get; init; }

        public required double DenseGbPerS { get; init; }

        public required double PerTokenOverheadMs { get; init; }

        /// <summary>Burst reads at the engine's depth with the decode step running beside them over the same with the CPUs idle (0: not measured).</summary>
        public double ReadSlowdownUnderCompute { get; init; }

        /// <summary>Expert compute lost per resumption after a stall, µs (<see cref="DeviceProfile.ComputeSpec.ResumeAfterStallUs"/>).</summary>
        public double ResumeAfterStallUs { get; init; }

        public required DateTime TakenUtc { get; init; }

        public required double Seconds { get; init; }
    }

    public static Figures Measure(string modelPath, Options o)
    {
        var sw = Stopwatch.StartNew();
        var taken = DateTime.UtcNow;
        var file = GgufFile.Open(modelPath);
        var config = ModelConfig.FromGguf(file);
        var layout = ExpertTensors.Layout(file, config);
        var (denseSeconds, expertSeconds, tokens, wakeSeconds, resumeSeconds, slowdown) = MeasureForward(file, layout, config, o);
        // The engine reads in bursts: a layer's misses at once after its router, then none while the layer's experts and
        // the next attention compute. The device reads are probed the same way: bursts of one layer's reads with all of
        // its routed experts missing, separated by the layer's compute time just probed.
        int burst = config.ExpertsUsed * Math.Max(1, (int)((layout.MaxExpertBytes + ReadBlockBytesOf(layout, o) - 1) / ReadBlockBytesOf(layout, o)));
        double gap = (denseSeconds / layout.Layers) + (config.ExpertsUsed * expertSeconds);
        var disk = MeasureDisk(layout, o, burst, gap);
        if (o.SweepBlockKib.Count > 0)
        {
            var (sweep, atSlice) = MeasureBlockSweep(layout, o, (long)burst * ReadBlockBytesOf(layout, o), gap);
            if (disk.StorageCacheBytes > 0)
            {
                // Whole-file reads that a storage cache partly serves; only the slice size has the cached rate to take its
                // share out, so every size at a depth is scaled as the slice size was (the cache holds the same share of
                // ranges whatever their size).
                sweep = sweep.Select(q =>
                {
                    int i = disk.FileReads.ToList().FindIndex(w => w.QueueDepth == q.QueueDepth);
                    double f = disk.Reads[i].LatencyUs / disk.FileReads[i].LatencyUs;
                    return new DeviceProfile.ReadPoint { BlockKib = q.BlockKib, QueueDepth = q.QueueDepth, LatencyUs = Math.Round(q.LatencyUs * f, 1), ReadMbPerS = Math.Round(q.ReadMbPerS / f, 1) };
                }).ToList();
            }

            disk = disk with { SweepReads = sweep, SweepAtSlice = atSlice };
        }

        double sampler = MeasureSampler(config.Vocab, o.Sampling, o.SecondsPerPoint / 3);
        return disk with
        {
            ExpertGbPerS = layout.MaxExpertBytes / expertSeconds / 1e9, DenseGbPerS = DenseBytes(file) / denseSeconds / 1e9, PerTokenOverheadMs = 0,
            SamplerMs = sampler * 1e3, ForwardTokens = tokens, TakenUtc = taken, Seconds = sw.Elapsed.TotalSeconds, ReaderWakeUs = Math.Round(wakeSeconds * 1e6, 1),
            ResumeAfterStallUs = Math.Round(resumeSeconds * 1e6, 1),
            ReadSlowdownUnderCompute = Math.Round(slowdown, 2),
        };
    }

    /// <summary>
    /// The disk figures: a region-size sweep over nested sets of the file's experts (a fixed random order; the smallest,
    /// 1/32 of the experts, read once first so that it is cached if anything is) at the engine's depth, the smallest
    /// region and the whole file at every probed depth; <see cref="StorageCacheFit"/> infers a cache below the device
    /// from the sweep, and the whole-file points, which that cache partly serves, are converted to the device's rate.
    /// Regions are read in ascending order, so each starts with the previous one in the cache, as a steady state would.
    /// </summary>
    private static Figures MeasureDisk(ExpertLayout layout, Options o, int burst, double gapSeconds)
    {
        using var store = new ExpertStore(layout, IoMode.Direct, o.ReadChunkBytes);
        var order = EveryExpert(layout);
        new Random(17).Shuffle(order);
        long Bytes(int n) => order.Take(n).Sum(x => layout[x.Layer, x.Expert].Bytes);
        int all = order.Length, small = Math.Min(all, Math.Max(8, all / 32));
        int[] depths = [.. Depths(o.QueueDepth)];
        int top = depths[^1];
        Warm(store, order.AsSpan(0, small));
        var cached = depths.Select(d => MeasureReads(store, d, o.SecondsPerPoint, order.AsMemory(0, small))).ToList();
        var sweep = new List<(long RegionBytes, double Seconds)> { (Bytes(small), cached[^1].LatencyUs * 1e-6) };
        foreach (int fraction in new[] { 8, 4, 2 })
        {
            int n = all / fraction;
            if (n <= small) continue;
            sweep.Add((Bytes(n), MeasureReads(store, top, o.SecondsPerPoint, order.AsMemory(0, n)).LatencyUs * 1e-6));
        }

        var whole = depths.Select(d => MeasureReads(store, d, o.SecondsPerPoint, order, burst, gapSeconds)).ToList();
        long wholeBytes = Bytes(all);
        sweep.Add((wholeBytes, whole[^1].LatencyUs * 1e-6));
        var fit = StorageCacheFit.Fit(sweep);
        var device = DeviceReads(whole, cached, wholeBytes, fit.CacheBytes);
        return new Figures
        {
            Reads = device, FileReads = whole, CachedReads = cached, StorageCacheBytes = fit.CacheBytes, Sweep = sweep, BurstReads = burst, BurstGapMs = gapSeconds * 1e3,
            ExpertGbPerS = 0, DenseGbPerS = 0, PerTokenOverheadMs = 0, TakenUtc = default, Seconds = 0,
        };
    }

    /// <summary>The device's rate from whole-file reads: a storage cache's share (the cached set's rate) taken out.</summary>
    private static List<DeviceProfile.ReadPoint> DeviceReads(IReadOnlyList<DeviceProfile.ReadPoint> whole, IReadOnlyList<DeviceProfile.ReadPoint> cached, long wholeBytes, long cacheBytes) =>
        whole.Select((w, i) =>
        {
            double us = StorageCacheFit.DeviceSeconds(w.LatencyUs * 1e-6, cached[i].LatencyUs * 1e-6, wholeBytes, cacheBytes) * 1e6;
            return new DeviceProfile.ReadPoint { BlockKib = w.BlockKib, QueueDepth = w.QueueDepth, LatencyUs = Math.Round(us, 1), ReadMbPerS = Math.Round(w.QueueDepth * w.BlockKib * 1024 / us, 1) };
        }).ToList();

    /// <summary>
    /// A short disk-only probe (between segments of a run): the whole file's slices at every depth, read in
    /// <paramref name="reference"/>'s bursts and gaps as <see cref="Measure"/> reads them, converted with its storage
    /// cache; compute, sweep and cached reads are <paramref name="reference"/>'s (not measured again).
    /// </summary>
    public static Figures MeasureDisk(string modelPath, Options o, Figures reference)
    {
        var sw = Stopwatch.StartNew();
        var taken = DateTime.UtcNow;
        var file = GgufFile.Open(modelPath);
        var layout = ExpertTensors.Layout(file, ModelConfig.FromGguf(file));
        using var store = new ExpertStore(layout, IoMode.Direct, o.ReadChunkBytes);
        var all = EveryExpert(layout);
        long wholeBytes = all.Sum(x => layout[x.Layer, x.Expert].Bytes);

        var whole = Depths(o.QueueDepth).Select(d => MeasureReads(store, d, o.SecondsPerPoint, all, reference.BurstReads, reference.BurstGapMs * 1e-3)).ToList();
        var device = reference.CachedReads.Count == whole.Count ? DeviceReads(whole, reference.CachedReads, wholeBytes, reference.StorageCacheBytes) : whole;
        return reference with { Reads = device, FileReads = whole, ForwardTokens = 0, TakenUtc = taken, Seconds = sw.Elapsed.TotalSeconds, Sweep = [] };
    }

    /// <summary>
    /// A read buffer like the engine's (StreamingExpertSource's slab, StreamingOptions.HugePages): transparent huge pages,
    /// 2 MiB-aligned. With 4 KiB pages every O_DIRECT read of a 2.6 MB expert pins ~650 pages, and reads in flight took
    /// ~3x longer on the dev VM, so a probe reading into plain memory would time a slower disk than the engine's.
    /// </summary>
    private static unsafe byte* ReadBuffer(ExpertStore store) => WeightMemory.Allocate(store.BufferBytes, hugePages: true, alignment: ExpertStore.BufferAlignment);

    /// <summary>Reads each expert of the set once (so a cache below the device holds it, if there is one).</summary>
    private static unsafe void Warm(ExpertStore store, ReadOnlySpan<(int Layer, int Expert)> set)
    {
        var buffer = ReadBuffer(store);
        try
        {
            foreach (var (l, e) in set) store.ReadExpert(0, l, e, buffer);
        }
        finally
        {
            WeightMemory.Free(buffer);
        }
    }

    /// <summary>
    /// A device profile from probes (several are averaged point by point: e.g. one before and one after the run) with
    /// the memory of <paramref name="basis"/>; its sources say when and how each figure was measured.
    /// </summary>
    public static DeviceProfile Profile(DeviceProfile basis, string modelPath, IReadOnlyList<Figures> probes, string origin = "calibrate --check probe")
    {
        if (probes.Count == 0) throw new ArgumentException("no probe figures", nameof(probes));
        var inv = CultureInfo.InvariantCulture;
        var p = new DeviceProfile
        {
            Name = basis.Name + "+probe",
            Description = $"{basis.Name}'s memory; disk and compute probed on {Path.GetFileName(modelPath)} at " + string.Join(" and ", probes.Select(f => f.TakenUtc.ToString("HH:mm:ss", inv))) + " UTC",
            Memory = basis.Memory,
        };
        p.Storage.Device = Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? "";
        var first = probes[0].Reads;
        // The sweep's sizes beside the slice size (plain calibrate; the check's probes take none), ordered by depth, then size.
        var points = first.Concat(probes[0].SweepReads).OrderBy(q => q.QueueDepth).ThenBy(q => q.BlockKib).ToList();
        foreach (var point in points)
        {
            // A read size a short probe happened not to draw at some depth is averaged over the probes that have it.
            var same = probes.Select(f => f.Reads.Concat(f.SweepReads).FirstOrDefault(q => q.BlockKib == point.BlockKib && q.QueueDepth == point.QueueDepth)).OfType<DeviceProfile.ReadPoint>().ToList();
            p.Storage.Reads.Add(new DeviceProfile.ReadPoint
            {
                BlockKib = point.BlockKib,
                QueueDepth = point.QueueDepth,
                ReadMbPerS = Math.Round(same.Average(q => q.ReadMbPerS), 1),
                LatencyUs = Math.Round(same.Average(q => q.LatencyUs), 1),
            });
        }

        // A probe that found no storage cache counts as 0 bytes in the mean; the cache's rates come from those that found one.
        var withCache = probes.Where(f => f.StorageCacheBytes > 0 && f.CachedReads.Count > 0).ToList();
        if (withCache.Count > 0)
        {
            var cache = new DeviceProfile.StorageCacheSpec { Mib = Math.Round(probes.Average(f => f.StorageCacheBytes) / (1 << 20), 1) };
            foreach (var point in withCache[0].CachedReads)
            {
                var same = withCache.Select(f => f.CachedReads.FirstOrDefault(q => q.BlockKib == point.BlockKib && q.QueueDepth == point.QueueDepth)).OfType<DeviceProfile.ReadPoint>().ToList();
                cache.Reads.Add(new DeviceProfile.ReadPoint
                {
                    BlockKib = point.BlockKib, QueueDepth = point.QueueDepth,
                    ReadMbPerS = Math.Round(same.Average(q => q.ReadMbPerS), 1), LatencyUs = Math.Round(same.Average(q => q.LatencyUs), 1),
                });
            }

            p.Storage.Cache = cache;
            p.Sources.Add(new DeviceProfile.SourceNote
            {
                Figure = "storage.cache",
                Source = origin + ": region-size sweep of O_DIRECT reads over nested random sets of the model's experts (1/32, 1/8, 1/4, 1/2, all) at the engine's depth, fitted as an LRU (StorageCacheFit); reads = the warmed 1/32 set at each depth",
            });
        }

        p.Storage.ReaderWakeUs = Math.Round(probes.Average(f => f.ReaderWakeUs), 1);
        // Reads as the engine issues them, one per slice of whatever model is simulated: the sweep covers other sizes.
        p.Storage.DefaultBlockKib = 0;
        p.Storage.DefaultQueueDepth = first.Max(r => r.QueueDepth);
        p.Compute.ExpertGbPerS = Math.Round(probes.Average(f => f.ExpertGbPerS), 2);
        p.Compute.DenseGbPerS = Math.Round(probes.Average(f => f.DenseGbPerS), 2);
        p.Compute.PerTokenOverheadMs = Math.Round(probes.Average(f => f.PerTokenOverheadMs), 3);
        // Not charged by default: measured and printed, and the check predicts with it beside (it over-predicted the engine's
        // compute at load 2.5-2.9; docs/traces-and-simulator.md).
        p.Compute.ResumeAfterStallUs = 0;
        p.Storage.ReadSlowdownUnderCompute = Math.Round(probes.Average(f => f.ReadSlowdownUnderCompute), 2);
        p.Sources.Add(new DeviceProfile.SourceNote { Figure = "memory.*", Source = $"profile '{basis.Name}'" });
        p.Sources.Add(new DeviceProfile.SourceNote
        {
            Figure = "storage.reads",
            Source = origin + ": random O_DIRECT reads of the model's own expert slices through ExpertStore.ReadSlice, depth = reader threads with one read each in flight; latency = mean per read, bandwidth = depth × size / latency; with a storage cache, its share of the whole-file reads taken out (StorageCacheFit.DeviceSeconds)",
        });
        if (probes[0].SweepReads.Count > 0)
        {
            var sizes = probes[0].SweepReads.Select(q => q.BlockKib).Distinct().Order().Select(k => k.ToString("0.#", inv));
            p.Sources.Add(new DeviceProfile.SourceNote
            {
                Figure = "storage.reads (other sizes: " + string.Join(", ", sizes) + " KiB)",
                Source = origin + ": block-size sweep after the slice-size points: O_DIRECT reads of that size at random 4 KiB-aligned offsets of the file's expert region, in bursts of the same bytes as one layer's slice reads with the same gap, at the same depths; latency = a burst's span per read on each thread" +
                    (probes[0].StorageCacheBytes > 0 ? "; with a storage cache, each depth scaled by the slice size's device/whole-file ratio" : ""),
            });
        }

        p.Sources.Add(new DeviceProfile.SourceNote { Figure = "storage.reader_wake_us", Source = origin + ": a thread asleep on a SemaphoreSlim (as the engine's readers) released every 1-3 ms during the decode steps below; mean release-to-running time" });
        p.Sources.Add(new DeviceProfile.SourceNote { Figure = "compute.expert_gb_per_s", Source = origin + ": the engine's decode step (MoeModel.Forward, experts from 64 of the file's own in RAM) from a fresh sequence; (step − attention − output head) per routed expert, expert bytes per second (norms and routers included)" });
        p.Sources.Add(new DeviceProfile.SourceNote { Figure = "compute.dense_gb_per_s", Source = origin + ": the same steps' attention layers and output head (the model's own timers), the file's dense bytes per second" });
        p.Sources.Add(new DeviceProfile.SourceNote { Figure = "storage.read_slowdown_under_compute", Source = origin + ": the whole file's slices at the engine's depth in the disk probe's bursts, with the decode step above running beside them on another thread, over the same with the CPUs idle (mean time per read); charged to prefetch reads, which the engine serves while the layers compute" });
        p.Sources.Add(new DeviceProfile.SourceNote { Figure = "compute.per_token_overhead_ms", Source = origin + ": 0, all in the two figures above; the sampler is outside the engine's decode time (its forward passes)" });
        return p;
    }

    private static IEnumerable<int> Depths(int depth)
    {
        var d = new SortedSet<int> { Math.Max(1, depth) };
        for (int x = 1; x < depth; x *= 2) d.Add(x);
        return d;
    }

    /// <summary>Every (layer, expert) of the file, layer by layer.</summary>
    private static (int Layer, int Expert)[] EveryExpert(ExpertLayout layout)
    {
        var all = new (int Layer, int Expert)[layout.Layers * layout.ExpertsPerLayer];
        for (int l = 0, i = 0; l < layout.Layers; l++)
        {
            for (int e = 0; e < layout.ExpertsPerLayer; e++) all[i++] = (l, e);
        }

        return all;
    }

    /// <summary>The size of the reads the engine issues for this model's experts (<see cref="ReadBlockBytes"/>).</summary>
    public static long ReadBlockBytes(string modelPath, long readChunkBytes = 0)
    {
        var file = GgufFile.Open(modelPath);
        return ReadBlockBytesOf(ExpertTensors.Layout(file, ModelConfig.FromGguf(file)), new Options { ReadChunkBytes = readChunkBytes });
    }

    private static long ReadBlockBytesOf(ExpertLayout layout, Options o)
    {
        using var store = new ExpertStore(layout, IoMode.Direct, o.ReadChunkBytes);
        return ReadBlockBytes(store);
    }

    /// <summary>
    /// The size the cost model charges one read at: an expert's bytes over the reads the store issues for it (gate, up,
    /// down, or their pieces at a read chunk size), as <see cref="CalibrationCheck.CostFor"/> uses.
    /// </summary>
    public static long ReadBlockBytes(ExpertStore store) => (store.Layout.MaxExpertBytes + store.Reads(0, 0, 0) - 1) / store.Reads(0, 0, 0);

    /// <summary>
    /// One point at this depth: the mean latency of the store's reads (random experts of the set, random slices), charged at
    /// <see cref="ReadBlockBytes"/>; bandwidth = depth × block / latency (the engine's reads are blocking preads).
    /// </summary>
    private static unsafe DeviceProfile.ReadPoint MeasureReads(ExpertStore store, int depth, double seconds, ReadOnlyMemory<(int Layer, int Expert)> set, int burst = 0, double gapSeconds = 0) =>
        MeasureReads(store.BufferBytes, ReadBlockBytes(store), depth, seconds, (rng, buffer) =>
        {
            var (l, e) = set.Span[rng.Next(set.Length)];
            store.ReadSlice(0, l, e, rng.Next(store.Reads(0, l, e)), (byte*)buffer);
        }, burst, gapSeconds);

    /// <summary>
    /// Block-size sweep: at each size and depth, random <paramref name="o"/>.SweepBlockKib-sized O_DIRECT reads at 4 KiB-aligned
    /// offsets of the file's expert region, in bursts of the slice probe's bytes (at least one read per thread) with its gap.
    /// Also the slice size itself by the same method, returned apart: it checks the method against the store's reads.
    /// </summary>
    private static (List<DeviceProfile.ReadPoint> Sweep, List<DeviceProfile.ReadPoint> AtSlice) MeasureBlockSweep(ExpertLayout layout, Options o, long burstBytes, double gapSeconds)
    {
        long first = long.MaxValue, end = 0;
        for (int l = 0; l < layout.Layers; l++)
        {
            for (int e = 0; e < layout.ExpertsPerLayer; e++)
            {
                ref readonly var x = ref layout[l, e];
                first = Math.Min(first, Math.Min(x.Gate.Offset, Math.Min(x.Up.Offset, x.Down.Offset)));
                end = Math.Max(end, Math.Max(x.Gate.Offset + x.Gate.Length, Math.Max(x.Up.Offset + x.Up.Length, x.Down.Offset + x.Down.Length)));
            }
        }

        long slice = ReadBlockBytesOf(layout, o);
        using var file = ModelFile.Open(layout.Path, IoMode.Direct);
        first = first / ModelFile.DirectAlignment * ModelFile.DirectAlignment;
        var sweep = new List<DeviceProfile.ReadPoint>();
        var atSlice = new List<DeviceProfile.ReadPoint>();
        foreach (long block in o.SweepBlockKib.Select(k => k * 1024L).Append(slice).Distinct().Order())
        {
            long span = (end - first - block) / ModelFile.DirectAlignment;
            if (span <= 0) continue; // larger than the file's experts: no random ranges to read
            foreach (int depth in Depths(o.QueueDepth))
            {
                int burst = (int)Math.Max(depth, (burstBytes + block - 1) / block);
                var point = MeasureReads(block, block, depth, o.SecondsPerPoint / 2, (rng, buffer) => RawRead(file, first + (rng.NextInt64(span + 1) * ModelFile.DirectAlignment), block, buffer), burst, gapSeconds);
                (block == slice ? atSlice : sweep).Add(point);
            }
        }

        return (sweep, atSlice);

        static unsafe void RawRead(ModelFile file, long offset, long length, nint buffer) => file.Read(offset, length, (byte*)buffer, out _);
    }

    /// <summary>
    /// One point at this depth: the mean latency of <paramref name="readOne"/> (a blocking read into the thread's buffer of
    /// <paramref name="bufferBytes"/>), charged at <paramref name="block"/>; bandwidth = depth × block / latency. With
    /// <paramref name="burst"/> reads per burst, <paramref name="gapSeconds"/> apart, the latency is a burst's span per
    /// round of reads on each thread.
    /// </summary>
    private static unsafe DeviceProfile.ReadPoint MeasureReads(long bufferBytes, long block, int depth, double seconds, Action<Random, nint> readOne, int burst = 0, double gapSeconds = 0)
    {
        long reads = 0;
        double latency = 0;
        var stop = Stopwatch.StartNew();
        var threads = new Thread[depth];
        // Burst mode: the threads share each burst's reads (tickets), meet at the barrier, and one sleeps the gap.
        // A burst lasts from its issue (the barrier's release: the threads must wake, as the engine's readers must) to
        // its last read's completion (the barrier's last arrival).
        int ticket = 0, bursts = 0;
        bool finished = false;
        long issued = Stopwatch.GetTimestamp(), burstTicks = 0;
        using var barrier = new Barrier(depth, _ =>
        {
            burstTicks += Stopwatch.GetTimestamp() - issued;
            bursts++;
            finished = bursts >= 4 && stop.Elapsed.TotalSeconds >= seconds;
            if (!finished && gapSeconds > 0) Thread.Sleep(TimeSpan.FromSeconds(gapSeconds));
            Volatile.Write(ref ticket, 0);
            issued = Stopwatch.GetTimestamp();
        });
        for (int t = 0; t < depth; t++)
        {
            int seed = (t * 7919) + depth;
            threads[t] = new Thread(() =>
            {
                // At least one huge page, so reads of any size land in huge pages as the engine's slab holds them: a
                // buffer under 2 MiB would get 4 KiB pages, and on this VM such reads ran 2-4x slower at the same size.
                var buffer = WeightMemory.Allocate(Math.Max(bufferBytes, WeightMemory.HugePageBytes), hugePages: true, alignment: ExpertStore.BufferAlignment);
                var rng = new Random(seed);
                long myReads = 0;
                double myLatency = 0;
                try
                {
                    void ReadOne()
                    {
                        long t0 = Stopwatch.GetTimestamp();
                        readOne(rng, (nint)buffer);
                        myLatency += Stopwatch.GetElapsedTime(t0).TotalSeconds;
                        myReads++;
                    }

                    if (burst > 0)
                    {
                        while (!Volatile.Read(ref finished))
                        {
                            while (Interlocked.Increment(ref ticket) <= burst) ReadOne();
                            barrier.SignalAndWait();
                        }
                    }
                    else
                    {
                        // At least a few reads each, however late the thread starts on a busy machine.
                        for (int n = 0; n < 4 || stop.Elapsed.TotalSeconds < seconds; n++) ReadOne();
                    }
                }
                finally
                {
                    WeightMemory.Free(buffer);
                }

                lock (threads)
                {
                    reads += myReads;
                    latency += myLatency;
                }
            });
            threads[t].Start();
        }

        foreach (var th in threads) th.Join();
        // Burst mode charges what the simulator's queue needs to reproduce a burst's span: ceil(burst / depth) reads
        // back to back on each thread, wake-up included; sustained mode the mean time inside a read.
        double mean = burst > 0 ? (double)burstTicks / Stopwatch.Frequency / bursts / ((burst + depth - 1) / depth) : latency / reads;
        return new DeviceProfile.ReadPoint { BlockKib = block / 1024.0, QueueDepth = depth, ReadMbPerS = Math.Round(depth * block / mean / 1e6, 1), LatencyUs = Math.Round(mean * 1e6, 1) };
    }

    /// <summary>
    /// The engine's own decode step over the file (<see cref="MoeModel.Forward"/>, dense weights resident as the engine
    /// loads them, experts from a <see cref="ProbeExpertSource"/> in RAM), from a fresh sequence for about twice the
    /// point time (at least 8 steps, after a warm-up of the point time), so the KV cache grows as in a run: per step, its attention layers and output head
    /// (the model's own timers) are the dense part; the rest (norms, routers, experts, their sums) over the L × k routed
    /// experts is the time per expert. No reads are in flight, as in the engine between a layer's last expert and the
    /// next layer's router.
    /// </summary>
    private static (double DenseSeconds, double ExpertSeconds, int Tokens, double WakeSeconds, double ResumeSeconds, double ReadSlowdown) MeasureForward(GgufFile file, ExpertLayout layout, ModelConfig config, Options o)
    {
        ProbeExpertSource? source = null;
        using var model = MoeModel.Load(file, new ModelOptions { Threads = o.Threads, MaxContext = 1024, ExpertSource = l => source = new ProbeExpertSource(l) });
        try
        {
            var rng = new Random(13);
            model.Reset();
            // Warm-up until the JIT has promoted the step's code (tiered compilation: a "before" probe runs it for the
            // first time in the process, where the engine's run has its prompt tokens first; two steps left the
            // kernels at tier 0, up to 5x slower on a 2-layer slice).
            // On a loaded machine the background JIT can take longer, so warm-up goes on (up to 4 point times) while the
            // last 8 steps are still more than 10% faster than the 8 before them.
            var warm = Stopwatch.StartNew();
            var recent = new double[16];
            for (int i = 0; ; i++)
            {
                if (model.Position >= model.MaxContext - 1) model.Reset();
                model.Forward(rng.Next(config.Vocab));
                recent[i % 16] = model.LastWallSeconds;
                if (i < 16 || warm.Elapsed.TotalSeconds < o.SecondsPerPoint) continue;
                double older = 0, newer = 0;
                for (int j = 0; j < 8; j++)
                {
                    newer += recent[(i - j) % 16];
                    older += recent[(i - 8 - j) % 16];
                }

                if (newer > 0.9 * older || warm.Elapsed.TotalSeconds > 4 * o.SecondsPerPoint) break;
            }

            model.Reset();
            double dense = 0, wall = 0;
            int n = 0;
            // While the steps run, a reader-like thread sleeps on a semaphore and is released every 1-3 ms: the time from
            // the release to it running is the wake-up the engine's readers pay for a demand while the compute holds the CPUs.
            using var wake = new ReaderWakeProbe();
            var sw = Stopwatch.StartNew();
            while ((n < 8 || sw.Elapsed.TotalSeconds < 2 * o.SecondsPerPoint) && n < model.MaxContext)
            {
                model.Forward(rng.Next(config.Vocab));
                dense += model.LastAttentionSeconds + model.LastHeadSeconds;
                wall += model.LastWallSeconds;
                n++;
            }

            double wakeSeconds = wake.Stop();
            int experts = layout.Layers * config.ExpertsUsed;
            double perExpert = Math.Max(1e-9, wall - dense) / n / experts;

            // The same steps with every expert handed out alone after a 1 ms blocking wait (about one streamed expert's read):
            // the engine computes a miss after a stall that way, with its compute threads asleep. What each expert costs
            // above the batched figure is the resumption's price (step − stall − attention − head, per expert).
            source!.StallBeforeEach = TimeSpan.FromMilliseconds(1);
            model.Reset();
            double staged = 0;
            int m = 0;
            sw.Restart();
            while ((m < 8 || sw.Elapsed.TotalSeconds < o.SecondsPerPoint) && m < model.MaxContext)
            {
                model.Forward(rng.Next(config.Vocab));
                staged += model.LastWallSeconds - model.LastStallSeconds - model.LastAttentionSeconds - model.LastHeadSeconds;
                m++;
            }

            source.StallBeforeEach = TimeSpan.Zero;
            double slowdown = MeasureReadSlowdown(model, layout, config, o, dense / n, perExpert);
            return (dense / n, perExpert, n, wakeSeconds, Math.Max(0, (staged / m / experts) - perExpert), slowdown);
        }
        finally
        {
            source?.Dispose();
        }
    }

    /// <summary>
    /// The whole file's slices at the engine's depth in the disk probe's bursts and gaps, with the CPUs idle and with the
    /// decode step running beside them on another thread, alternated twice (as the engine's prefetch reads are served while the layers
    /// compute): the second's time per read over the first's. On this VM reads beside the decode took 1.6–1.9× as long.
    /// </summary>
    private static double MeasureReadSlowdown(MoeModel model, ExpertLayout layout, ModelConfig config, Options o, double denseSeconds, double expertSeconds)
    {
        using var store = new ExpertStore(layout, IoMode.Direct, o.ReadChunkBytes);
        int burst = config.ExpertsUsed * store.Reads(0, 0, 0);
        double gap = (denseSeconds / layout.Layers) + (config.ExpertsUsed * expertSeconds);
        var all = EveryExpert(layout);
        int depth = Depths(o.QueueDepth).Last();
        // Alternated twice (idle, beside, idle, beside): the disk's own rate drifts within seconds on this VM, and one pair
        // of half-second points read 0.84 at load 5.
        double idle = 0, busy = 0;
        for (int round = 0; round < 2; round++)
        {
            idle += MeasureReads(store, depth, o.SecondsPerPoint / 4, all, burst, gap).LatencyUs;
            busy += BesideDecode(() => MeasureReads(store, depth, o.SecondsPerPoint / 4, all, burst, gap).LatencyUs);
        }

        return busy / idle;

        double BesideDecode(Func<double> measure)
        {
            bool stop = false;
            var decoder = new Thread(() =>
            {
                var rng = new Random(29);
                model.Reset();
                while (!Volatile.Read(ref stop))
                {
                    if (model.Position >= model.MaxContext - 1) model.Reset();
                    model.Forward(rng.Next(config.Vocab));
                }
            });
            decoder.Start();
            try
            {
                return measure();
            }
            finally
            {
                Volatile.Write(ref stop, true);
                decoder.Join();
            }
        }
    }

    /// <summary>Dense bytes a decode step reads, as <see cref="CalibrationCheck.CostFor"/> counts them.</summary>
    private static long DenseBytes(GgufFile file)
    {
        long dense = file.Tensors.Where(t => !ExpertTensors.IsRoutedExpert(t) && t.Name != "token_embd.weight").Sum(t => t.ByteSize);
        if (file.FindTensor("output.weight") is null && file.FindTensor("token_embd.weight") is { } tied) dense += tied.ByteSize;
        return dense;
    }

    private static double MeasureSampler(int vocab, SamplerOptions options, double seconds)
    {
        var sampler = new Sampler(vocab, options);
        var logits = new float[vocab];
        var rng = new Random(11);
        for (int i = 0; i < vocab; i++) logits[i] = (float)((rng.NextDouble() - 0.5) * 20);
        sampler.Sample(logits);
        long done = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds || done == 0)
        {
            sampler.Sample(logits);
            done++;
        }

        return sw.Elapsed.TotalSeconds / done;
    }

    /// <summary>Times how long a thread asleep on a <see cref="SemaphoreSlim"/> takes to run after a release, repeatedly, until stopped.</summary>
    private sealed class ReaderWakeProbe : IDisposable
    {
        private readonly SemaphoreSlim _work = new(0), _taken = new(0);
        private readonly Thread _reader, _signaller;
        private long _releasedAt, _sum, _count;
        private volatile bool _stop;

        public ReaderWakeProbe()
        {
            _reader = new Thread(() =>
            {
                while (true)
                {
                    _work.Wait();
                    if (_stop) return;
                    Interlocked.Add(ref _sum, Stopwatch.GetTimestamp() - Volatile.Read(ref _releasedAt));
                    Interlocked.Increment(ref _count);
                    _taken.Release();
                }
            }) { IsBackground = true };
            _signaller = new Thread(() =>
            {
                var rng = new Random(23);
                while (!_stop)
                {
                    Thread.Sleep(1 + rng.Next(3));
                    Volatile.Write(ref _releasedAt, Stopwatch.GetTimestamp());
                    _work.Release();
                    // the next release only after this one was taken, so each sample starts from a sleeping reader (a
                    // blocking wait: spinning here would take the CPU the reader needs)
                    _taken.Wait();
                }
            }) { IsBackground = true };
            _reader.Start();
            _signaller.Start();
        }

        /// <summary>Stops the threads; the mean wake-up in seconds (0 if none was timed).</summary>
        public double Stop()
        {
            if (!_stop)
            {
                _stop = true;
                _taken.Release();
                _signaller.Join();
                _work.Release();
                _reader.Join();
            }

            long n = Interlocked.Read(ref _count);
            return n == 0 ? 0 : (double)Interlocked.Read(ref _sum) / n / Stopwatch.Frequency;
        }

        public void Dispose()
        {
            Stop();
            _work.Dispose();
            _taken.Dispose();
        }
    }
}
