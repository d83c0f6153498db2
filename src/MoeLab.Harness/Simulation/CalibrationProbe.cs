using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
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
    }

    /// <summary>One probe: read points at the file's slice sizes, compute throughputs, per-token overhead, and when.</summary>
    public sealed record Figures
    {
        /// <summary>The device's rate: the whole-file reads with a storage cache's share taken out (as read when there is none).</summary>
        public required IReadOnlyList<DeviceProfile.ReadPoint> Reads { get; init; }

        /// <summary>Random reads over the whole file's experts, as measured.</summary>
        public IReadOnlyList<DeviceProfile.ReadPoint> FileReads { get; init; } = [];

        /// <summary>Random reads over a small warmed set of experts (1/32 of them): the rate of a storage cache below the device.</summary>
        public IReadOnlyList<DeviceProfile.ReadPoint> CachedReads { get; init; } = [];

        /// <summary>The storage cache <see cref="StorageCacheFit"/> inferred from <see cref="Sweep"/>; 0 = none.</summary>
        public long StorageCacheBytes { get; init; }

        /// <summary>Region-size sweep at the engine's depth: (region bytes, mean seconds per read), ascending.</summary>
        public IReadOnlyList<(long RegionBytes, double Seconds)> Sweep { get; init; } = [];

        public required double ExpertGbPerS { get; init; }

        public required double DenseGbPerS { get; init; }

        public required double PerTokenOverheadMs { get; init; }

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
        var disk = MeasureDisk(layout, o);
        int threads = o.Threads > 0 ? o.Threads : Environment.ProcessorCount;
        using var pool = new ComputePool(threads);
        double expert = MeasureExperts(layout, pool, o.SecondsPerPoint);
        double dense = MeasureDense(file, pool, o.SecondsPerPoint);
        double overhead = MeasureSampler(config.Vocab, o.Sampling, o.SecondsPerPoint / 3);
        return disk with { ExpertGbPerS = expert, DenseGbPerS = dense, PerTokenOverheadMs = overhead * 1e3, TakenUtc = taken, Seconds = sw.Elapsed.TotalSeconds };
    }

    /// <summary>
    /// The disk figures: a region-size sweep over nested sets of the file's experts (a fixed random order; the smallest,
    /// 1/32 of the experts, read once first so that it is cached if anything is) at the engine's depth, the smallest
    /// region and the whole file at every probed depth; <see cref="StorageCacheFit"/> infers a cache below the device
    /// from the sweep, and the whole-file points, which that cache partly serves, are converted to the device's rate.
    /// Regions are read in ascending order, so each starts with the previous one in the cache, as a steady state would.
    /// </summary>
    private static Figures MeasureDisk(ExpertLayout layout, Options o)
    {
        using var store = new ExpertStore(layout, IoMode.Direct, o.ReadChunkBytes);
        var order = new (int Layer, int Expert)[layout.Layers * layout.ExpertsPerLayer];
        for (int l = 0, i = 0; l < layout.Layers; l++)
        {
            for (int e = 0; e < layout.ExpertsPerLayer; e++) order[i++] = (l, e);
        }

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

        var whole = depths.Select(d => MeasureReads(store, d, o.SecondsPerPoint, order)).ToList();
        long wholeBytes = Bytes(all);
        sweep.Add((wholeBytes, whole[^1].LatencyUs * 1e-6));
        var fit = StorageCacheFit.Fit(sweep);
        var device = whole.Select((w, i) =>
        {
            double us = StorageCacheFit.DeviceSeconds(w.LatencyUs * 1e-6, cached[i].LatencyUs * 1e-6, wholeBytes, fit.CacheBytes) * 1e6;
            return new DeviceProfile.ReadPoint { BlockKib = w.BlockKib, QueueDepth = w.QueueDepth, LatencyUs = Math.Round(us, 1), ReadMbPerS = Math.Round(w.QueueDepth * w.BlockKib * 1024 / us, 1) };
        }).ToList();
        return new Figures
        {
            Reads = device, FileReads = whole, CachedReads = cached, StorageCacheBytes = fit.CacheBytes, Sweep = sweep,
            ExpertGbPerS = 0, DenseGbPerS = 0, PerTokenOverheadMs = 0, TakenUtc = default, Seconds = 0,
        };
    }

    /// <summary>Reads each expert of the set once (so a cache below the device holds it, if there is one).</summary>
    private static unsafe void Warm(ExpertStore store, ReadOnlySpan<(int Layer, int Expert)> set)
    {
        var buffer = (byte*)NativeMemory.AlignedAlloc((nuint)store.BufferBytes, (nuint)ExpertStore.BufferAlignment);
        try
        {
            foreach (var (l, e) in set) store.ReadExpert(0, l, e, buffer);
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    /// <summary>
    /// A device profile from probes (several are averaged point by point: e.g. one before and one after the run) with
    /// the memory of <paramref name="basis"/>; its sources say when and how each figure was measured.
    /// </summary>
    public static DeviceProfile Profile(DeviceProfile basis, string modelPath, IReadOnlyList<Figures> probes)
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
        foreach (var point in first)
        {
            // A read size a short probe happened not to draw at some depth is averaged over the probes that have it.
            var same = probes.Select(f => f.Reads.FirstOrDefault(q => q.BlockKib == point.BlockKib && q.QueueDepth == point.QueueDepth)).OfType<DeviceProfile.ReadPoint>().ToList();
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
                Source = "calibrate --check probe: region-size sweep of O_DIRECT reads over nested random sets of the model's experts (1/32, 1/8, 1/4, 1/2, all) at the engine's depth, fitted as an LRU (StorageCacheFit); reads = the warmed 1/32 set at each depth",
            });
        }

        p.Storage.DefaultBlockKib = (int)Math.Round(first.Max(r => r.BlockKib));
        p.Storage.DefaultQueueDepth = first.Max(r => r.QueueDepth);
        p.Compute.ExpertGbPerS = Math.Round(probes.Average(f => f.ExpertGbPerS), 2);
        p.Compute.DenseGbPerS = Math.Round(probes.Average(f => f.DenseGbPerS), 2);
        p.Compute.PerTokenOverheadMs = Math.Round(probes.Average(f => f.PerTokenOverheadMs), 3);
        p.Sources.Add(new DeviceProfile.SourceNote { Figure = "memory.*", Source = $"profile '{basis.Name}'" });
        p.Sources.Add(new DeviceProfile.SourceNote
        {
            Figure = "storage.reads",
            Source = "calibrate --check probe: random O_DIRECT reads of the model's own expert slices through ExpertStore.ReadSlice, depth = reader threads with one read each in flight; latency = mean per read, bandwidth = depth × size / latency; with a storage cache, its share of the whole-file reads taken out (StorageCacheFit.DeviceSeconds)",
        });
        p.Sources.Add(new DeviceProfile.SourceNote { Figure = "compute.expert_gb_per_s", Source = "calibrate --check probe: MoeBlock's expert computation (MatVec2 gate/up, SwiGLU, MatVec down) over the model's own experts, weight bytes per second" });
        p.Sources.Add(new DeviceProfile.SourceNote { Figure = "compute.dense_gb_per_s", Source = "calibrate --check probe: one MatVec over each of the model's dense matrices (attention, router, shared expert, output head), weight bytes per second" });
        p.Sources.Add(new DeviceProfile.SourceNote { Figure = "compute.per_token_overhead_ms", Source = "calibrate --check probe: the sampler (the run's options) over random logits of the vocabulary's size" });
        return p;
    }

    private static IEnumerable<int> Depths(int depth)
    {
        var d = new SortedSet<int> { Math.Max(1, depth) };
        for (int x = 1; x < depth; x *= 2) d.Add(x);
        return d;
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
    private static unsafe DeviceProfile.ReadPoint MeasureReads(ExpertStore store, int depth, double seconds, ReadOnlyMemory<(int Layer, int Expert)> set)
    {
        long reads = 0;
        double latency = 0;
        var stop = Stopwatch.StartNew();
        var threads = new Thread[depth];
        for (int t = 0; t < depth; t++)
        {
            int seed = (t * 7919) + depth;
            threads[t] = new Thread(() =>
            {
                var buffer = (byte*)NativeMemory.AlignedAlloc((nuint)store.BufferBytes, (nuint)ExpertStore.BufferAlignment);
                var rng = new Random(seed);
                long myReads = 0;
                double myLatency = 0;
                try
                {
                    // At least a few reads each, however late the thread starts on a busy machine.
                    for (int n = 0; n < 4 || stop.Elapsed.TotalSeconds < seconds; n++)
                    {
                        var (l, e) = set.Span[rng.Next(set.Length)];
                        int r = rng.Next(store.Reads(0, l, e));
                        long t0 = Stopwatch.GetTimestamp();
                        store.ReadSlice(0, l, e, r, buffer);
                        myLatency += Stopwatch.GetElapsedTime(t0).TotalSeconds;
                        myReads++;
                    }
                }
                finally
                {
                    NativeMemory.AlignedFree(buffer);
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
        long block = ReadBlockBytes(store);
        double mean = latency / reads;
        return new DeviceProfile.ReadPoint { BlockKib = block / 1024.0, QueueDepth = depth, ReadMbPerS = Math.Round(depth * block / mean / 1e6, 1), LatencyUs = Math.Round(mean * 1e6, 1) };
    }

    /// <summary>MoeBlock.Expert over up to 64 of the file's experts (a working set beyond the CPU caches), bytes per second.</summary>
    private static unsafe double MeasureExperts(ExpertLayout layout, ComputePool pool, double seconds)
    {
        int count = Math.Min(64, layout.Layers * layout.ExpertsPerLayer);
        using var store = new ExpertStore(layout, IoMode.Buffered);
        var slab = (byte*)NativeMemory.AlignedAlloc((nuint)(store.BufferBytes * count), (nuint)ExpertStore.BufferAlignment);
        try
        {
            var experts = new ExpertWeights[count];
            long bytes = 0;
            var rng = new Random(5);
            for (int i = 0; i < count; i++)
            {
                int l = i % layout.Layers, e = rng.Next(layout.ExpertsPerLayer);
                byte* buffer = slab + (i * store.BufferBytes);
                store.ReadExpert(0, l, e, buffer);
                experts[i] = store.View(0, l, e, buffer);
                bytes += layout[l, e].Bytes;
            }

            int hidden = experts[0].Gate.Cols, ff = experts[0].Gate.Rows;
            var x = new QuantizedVector(hidden);
            var h = new QuantizedVector(ff);
            var input = new float[hidden];
            for (int i = 0; i < hidden; i++) input[i] = (float)(rng.NextDouble() - 0.5);
            x.Set(input);
            var g = new float[ff];
            var u = new float[ff];
            var y = new float[hidden];
            long done = 0;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < count; i++) Expert(experts[i]); // warm-up: JIT and threads
            sw.Restart();
            while (sw.Elapsed.TotalSeconds < seconds)
            {
                for (int i = 0; i < count; i++) Expert(experts[i]);
                done++;
            }

            return done * bytes / sw.Elapsed.TotalSeconds / 1e9;

            void Expert(in ExpertWeights w)
            {
                pool.MatVec2(w.Gate, w.Up, x, g, u);
                VectorOps.SwiGlu(g, u);
                h.Set(g);
                pool.MatVec(w.Down, h, y);
            }
        }
        finally
        {
            NativeMemory.AlignedFree(slab);
        }
    }

    /// <summary>One matvec over every 2-D dense tensor a decode step reads (the same set CostFor counts), bytes per second.</summary>
    private static double MeasureDense(GgufFile file, ComputePool pool, double seconds)
    {
        bool tied = file.FindTensor("output.weight") is null;
        using var resident = new ResidentTensors(file, t => t.Dims.Length == 2 && MatVec.Supports(t.Type) && !ExpertTensors.IsRoutedExpert(t) && (t.Name != "token_embd.weight" || tied));
        var matrices = new List<WeightMatrix>();
        long bytes = 0;
        foreach (var t in file.Tensors)
        {
            if (!resident.Has(t.Name)) continue;
            var m = resident.Matrix(t.Name, (int)t.Dims[1], (int)t.Dims[0]);
            matrices.Add(m);
            bytes += m.TotalBytes;
        }

        if (matrices.Count == 0) return double.PositiveInfinity;
        var inputs = new Dictionary<int, QuantizedVector>();
        var rng = new Random(9);
        foreach (int cols in matrices.Select(m => m.Cols).Distinct())
        {
            var v = new QuantizedVector(cols);
            var x = new float[cols];
            for (int i = 0; i < cols; i++) x[i] = (float)(rng.NextDouble() - 0.5);
            v.Set(x);
            inputs[cols] = v;
        }

        var y = new float[matrices.Max(m => m.Rows)];
        foreach (var m in matrices) pool.MatVec(m, inputs[m.Cols], y.AsSpan(0, m.Rows)); // warm-up
        long done = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds)
        {
            foreach (var m in matrices) pool.MatVec(m, inputs[m.Cols], y.AsSpan(0, m.Rows));
            done++;
        }

        return done * bytes / sw.Elapsed.TotalSeconds / 1e9;
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
}
