using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Tests.Experts;

public sealed class StreamingExpertSourceTests
{
    private const int Layers = 4;
    private const int Experts = 64;
    private const int TopK = 4;

    [Theory]
    [InlineData(IoMode.Buffered, 1, 20, ReadEngine.Threads, 0)]
    [InlineData(IoMode.Buffered, 4, 32, ReadEngine.Threads, 0)]
    [InlineData(IoMode.Direct, 1, 20, ReadEngine.Threads, 0)]
    [InlineData(IoMode.Direct, 8, 32, ReadEngine.Threads, 0)]
    [InlineData(IoMode.Direct, 8, 32, ReadEngine.Aio, 0)]
    [InlineData(IoMode.Direct, 3, 20, ReadEngine.Aio, 8192)]
    [InlineData(IoMode.Direct, 4, 20, ReadEngine.Threads, 4096)]
    [InlineData(IoMode.Buffered, 4, 20, ReadEngine.Aio, 0)] // AIO serves direct mode only: falls back to threads
    public void UnderASmallBudgetServesTheSameBytesAsResidentAndReadsExactlyTheMisses(IoMode mode, int depth, int cacheBuffers, ReadEngine engine, long readChunk)
    {
        if (mode == IoMode.Direct && DirectIoProbe.Unsupported is not null) return;
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 10 + depth);
        using var resident = new ResidentExpertSource(file.Layout);
        using var store = new ExpertStore(file.Layout, mode, readChunk);
        var options = new StreamingOptions { BudgetBytes = (TopK + cacheBuffers) * store.BufferBytes, WorkingBuffers = TopK, ReadEngine = engine };
        var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
        using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(depth));
        if (mode == IoMode.Buffered || !OperatingSystem.IsLinux()) Assert.Equal(ReadEngine.Threads, source.ReadEngine);
        else Assert.Equal(engine, source.ReadEngine); // on Linux, direct mode: AIO must really run, not fall back silently
        var sink = new CountingSink();
        source.EventSink = sink;
        Assert.True(source.SlabBytes * 4 < file.Layout.TotalBytes, "the budget should be far below the experts' size");

        RandomTokens(source, 40, new Random(depth), (l, e, w) =>
        {
            var r = resident.Acquire(l, e);
            file.AssertMatches(l, e, w);
            Assert.True(r.Gate.All.SequenceEqual(w.Gate.All) && r.Up.All.SequenceEqual(w.Up.All) && r.Down.All.SequenceEqual(w.Down.All));
        }, afterLayer: t => Assert.Equal(t, sink.LastToken));

        var c = source.Counters;
        Assert.Equal(40 * Layers * TopK, c.Requests);
        Assert.True(c.Misses > 0 && c.Hits > 0, $"misses {c.Misses}, hits {c.Hits}: the sequence should exercise both");
        Assert.Equal(c.Misses * file.ExpertBytes, c.BytesRead);
        Assert.Equal(c.Misses, sink.Misses);
        Assert.Equal(c.Hits, sink.Hits);
        Assert.Equal(c.BytesRead, sink.BytesRead);
        Assert.Equal(c.BytesTransferred, sink.BytesTransferred);
        if (mode == IoMode.Buffered) Assert.Equal(c.BytesRead, c.BytesTransferred);
        // Whole pages, except a read of the file's last slice, clipped at the end of the file.
        else Assert.True(c.BytesTransferred > c.BytesRead && (c.BytesTransferred % 4096 == 0 || new FileInfo(file.Path).Length % 4096 != 0), $"{c.BytesTransferred} bytes transferred for {c.BytesRead} read");
    }

    [Theory]
    [InlineData(GgmlType.Q4_0, IoMode.Direct, 0L, true)]
    [InlineData(GgmlType.Q4_0, IoMode.Direct, 4096L, true)] // an expert's pieces land separately: repacked after the last
    [InlineData(GgmlType.Q4_K, IoMode.Buffered, 0L, true)]
    [InlineData(GgmlType.Q4_K, IoMode.Direct, 0L, false)]
    public void ArrivedExpertsAreRepackedInPlaceWithinTheBudget(GgmlType type, IoMode mode, long readChunk, bool interleave)
    {
        if (mode == IoMode.Direct && DirectIoProbe.Unsupported is not null) return;
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 3, hidden: 256, ff: 256, type: type);
        using var store = new ExpertStore(file.Layout, mode, readChunk);
        var options = new StreamingOptions { BudgetBytes = (TopK + 12) * store.BufferBytes + (store.BufferBytes / 2), WorkingBuffers = TopK, Interleave = interleave };
        var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
        using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(4));
        Assert.Equal(TopK + 12, source.BufferCount); // repacking in place takes no RAM beyond the buffers
        var expected = interleave && KernelIsaInfo.Best >= KernelIsa.Avx2 ? WeightLayout.Interleaved8 : WeightLayout.Rows;

        RandomTokens(source, 30, new Random(7), (l, e, w) =>
        {
            Assert.Equal([expected, expected, expected], new[] { w.Gate.Layout, w.Up.Layout, w.Down.Layout });
            file.AssertMatches(l, e, w); // the file's rows, whichever expert the buffer held before
        });

        source.WaitIdle();
        var c = source.Counters;
        Assert.True(c.Misses > 4 * source.BufferCount, $"{c.Misses} misses into {source.BufferCount} buffers: buffers should be reused by many experts");
        Assert.Equal(c.Misses * file.ExpertBytes, c.BytesRead);
        Assert.Equal(expected == WeightLayout.Interleaved8, c.RepackSeconds > 0);
    }

    [Fact]
    public void HitsAndMissesFollowTheCachePolicyExactly()
    {
        // An independent model of the same LRU run over the same sequence predicts every outcome.
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 20);
        using var store = new ExpertStore(file.Layout, IoMode.Buffered);
        var options = new StreamingOptions { BudgetBytes = (TopK + 5) * store.BufferBytes, WorkingBuffers = TopK };
        using var source = new StreamingExpertSource(store, options, new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts), new DemandFirstFifo(2));
        var model = new ArrayLru(5, Layers, Experts);
        var rng = new Random(20);
        long hits = 0, misses = 0;
        for (int t = 0; t < 30; t++)
        {
            for (int l = 0; l < Layers; l++)
            {
                int[] chosen = Route(rng);
                source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen });
                foreach (int e in chosen)
                {
                    var key = new ExpertKey(l, e);
                    if (model.Access(key, 1, 0)) hits++;
                    else
                    {
                        misses++;
                        model.Admit(key, 1, 0, null);
                    }
                }

                foreach (int e in chosen)
                {
                    source.Acquire(l, e);
                    source.Release(l, e);
                }
            }
        }

        Assert.Equal(misses, source.Counters.Misses);
        Assert.Equal(hits, source.Counters.Hits);
    }

    [Fact]
    public void PinnedExpertsAreNeverOverwrittenEvenWhenThePolicyEvictsThem()
    {
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 30);
        using var store = new ExpertStore(file.Layout, IoMode.Buffered);
        var options = new StreamingOptions { BudgetBytes = (TopK + 1) * store.BufferBytes, WorkingBuffers = TopK };
        var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
        using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(4));
        var rng = new Random(30);
        for (int t = 0; t < 20; t++)
        {
            for (int l = 0; l < Layers; l++)
            {
                int[] chosen = Route(rng);
                source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen });

                // Hold all four while the one-expert cache admits each in turn, evicting the ones before it.
                var held = chosen.Select(e => source.Acquire(l, e)).ToArray();
                var acc = source.Accounting();
                Assert.Equal(TopK, acc.Pinned);
                Assert.True(acc.Cached <= 1 && acc.Occupied <= acc.Buffers);
                for (int i = 0; i < TopK; i++) file.AssertMatches(l, chosen[i], held[i]);
                foreach (int e in chosen) source.Release(l, e);
                Assert.True(source.Accounting().Occupied <= 1);
            }
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void PrefetchedExpertsAreServedCorrectlyAndCountedOnce(bool cancelStale)
    {
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 40);
        using var store = new ExpertStore(file.Layout, IoMode.Buffered);
        var options = new StreamingOptions { BudgetBytes = (TopK + 10) * store.BufferBytes, WorkingBuffers = TopK };
        var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
        using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(2, cancelStale), new SameExpertsNextLayer(Layers));
        var sink = new CountingSink();
        source.EventSink = sink;

        // Routing that often repeats the previous layer's experts, so the guess is sometimes right.
        var rng = new Random(40);
        int[] previous = Route(rng);
        for (int t = 0; t < 30; t++)
        {
            for (int l = 0; l < Layers; l++)
            {
                int[] chosen = rng.Next(2) == 0 ? previous : Route(rng);
                previous = chosen;
                source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen });
                foreach (int e in chosen)
                {
                    file.AssertMatches(l, e, source.Acquire(l, e));
                    source.Release(l, e);
                }

                source.Accounting();
            }
        }

        var c = Idle(source);
        Assert.True(c.PrefetchIssued > 0 && c.PrefetchHits > 0, $"issued {c.PrefetchIssued}, hits {c.PrefetchHits}");
        Assert.Equal(30 * Layers * TopK, c.Requests);
        Assert.Equal(c.PrefetchHits, sink.PrefetchHits);

        // Every read is a demand miss or an issued prefetch; cancelled ones never reach the device.
        Assert.Equal((c.Misses + c.PrefetchIssued) * file.ExpertBytes, c.BytesRead);
        Assert.True(c.PrefetchHits + c.PrefetchUnused <= c.PrefetchIssued + c.PrefetchCancelled);
    }

    [Fact]
    public void SteadyStateAllocatesNothingPerToken()
    {
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 50);
        using var store = new ExpertStore(file.Layout, IoMode.Buffered);
        var options = new StreamingOptions { BudgetBytes = (TopK + 6) * store.BufferBytes, WorkingBuffers = TopK };
        var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
        using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(4), new SameExpertsNextLayer(Layers));
        source.EventSink = new CountingSink();
        var rng = new Random(50);
        int[][] routes = Enumerable.Range(0, 400 * Layers).Select(_ => Route(rng)).ToArray();
        var weights = new float[TopK];

        void Run(int from, int tokens)
        {
            for (int t = from; t < from + tokens; t++)
            {
                source.BeginToken(t);
                for (int l = 0; l < Layers; l++)
                {
                    int[] chosen = routes[(t * Layers) + l];
                    source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen, Weights = weights });
                    foreach (int e in chosen)
                    {
                        var w = source.Acquire(l, e);
                        if (w.Gate.Rows == 0) throw new InvalidOperationException();
                        source.Release(l, e);
                    }
                }

                _ = source.Counters;
            }
        }

        Run(0, 100); // warm-up: first use of locks, waits and code paths
        long before = GC.GetAllocatedBytesForCurrentThread();
        Run(100, 300);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(source.Counters.Misses > 100, "the measured tokens must include reads");
        Assert.Equal(0, allocated);
    }

    [Theory]
    [InlineData(ReadEngine.Threads)]
    [InlineData(ReadEngine.Aio)]
    public void PrefetchReadsInFlightStayWithinThePrefetchDepth(ReadEngine engine)
    {
        if (DirectIoProbe.Unsupported is not null) return;
        int Peak(int prefetchDepth, int seed)
        {
            using var file = new SyntheticExpertFile(Layers, Experts, seed: seed);
            using var store = new ExpertStore(file.Layout, IoMode.Direct, readChunkBytes: 4096);
            var options = new StreamingOptions { BudgetBytes = (TopK + 24) * store.BufferBytes, WorkingBuffers = TopK, ReadEngine = engine };
            var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
            using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(6, prefetchDepth: prefetchDepth), new SameExpertsNextLayer(Layers));
            var rng = new Random(seed);
            for (int t = 0; t < 30; t++)
            {
                for (int l = 0; l < Layers; l++)
                {
                    int[] chosen = Route(rng);
                    source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen });
                    foreach (int e in chosen)
                    {
                        file.AssertMatches(l, e, source.Acquire(l, e));
                        source.Release(l, e);
                    }
                }
            }

            var c = Idle(source);
            Assert.True(c.PrefetchIssued > 0, "the guesses should be read");
            Assert.Equal((c.Misses + c.PrefetchIssued) * file.ExpertBytes, c.BytesRead);
            return source.PeakPrefetchReadsInFlight;
        }

        // Pieces of 4 KiB: each prefetched expert is many reads, so uncapped they fill the depth.
        Assert.True(Peak(prefetchDepth: 0, seed: 90) > 2, "without a cap prefetch reads should take more than two readers");
        Assert.InRange(Peak(prefetchDepth: 2, seed: 90), 1, 2);
        Assert.InRange(Peak(prefetchDepth: 1, seed: 91), 1, 1);
    }

    [Theory]
    [InlineData(ReadEngine.Threads)]
    [InlineData(ReadEngine.Aio)]
    public void PrefetchesHeldBackByThePrefetchDepthFinishWithoutAnyFurtherDemand(ReadEngine engine)
    {
        // Each prefetched expert is many 4 KiB reads and only one may be in flight: the readers held back must be woken
        // by each read's completion, not only by an expert's last one or by a new demand (that once hung forever).
        if (DirectIoProbe.Unsupported is not null) return;
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 95);
        using var store = new ExpertStore(file.Layout, IoMode.Direct, readChunkBytes: 4096);
        var options = new StreamingOptions { BudgetBytes = (TopK + 12) * store.BufferBytes, WorkingBuffers = TopK, ReadEngine = engine };
        var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
        using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(6, prefetchDepth: 1), new SameExpertsNextLayer(Layers));
        int[] chosen = [1, 2, 3, 4];
        source.Request(new RoutingObservation { Token = 0, Layer = 0, Experts = chosen });
        foreach (int e in chosen)
        {
            source.Acquire(0, e);
            source.Release(0, e);
        }

        var waiter = new Thread(source.WaitIdle) { IsBackground = true };
        waiter.Start();
        Assert.True(waiter.Join(TimeSpan.FromSeconds(60)), "prefetch reads never finished");
        Assert.Equal(4, source.Counters.PrefetchIssued);
        foreach (int e in chosen) Assert.True(source.IsResident(new ExpertKey(1, e)));
    }

    [Fact]
    public void DemandQueueTimeCountsEveryMissAndOneIdleIssuePerLayerThatMisses()
    {
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 80);
        using var store = new ExpertStore(file.Layout, IoMode.Buffered);
        var options = new StreamingOptions { BudgetBytes = (TopK + 6) * store.BufferBytes, WorkingBuffers = TopK };
        var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
        using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(1));
        var rng = new Random(80);
        int layersThatMissed = 0;
        for (int t = 0; t < 30; t++)
        {
            source.BeginToken(t);
            for (int l = 0; l < Layers; l++)
            {
                long missesBefore = source.Counters.Misses;
                int[] chosen = Route(rng);
                source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen, Weights = new float[TopK] });
                if (source.Counters.Misses > missesBefore) layersThatMissed++;
                foreach (int e in chosen)
                {
                    source.Acquire(l, e);
                    source.Release(l, e);
                }
            }
        }

        // Every layer's reads finished before the next request, so its first miss found the readers idle and the
        // others queued behind it (depth 1): they waited at least as long as the idle one.
        var c = source.Counters;
        Assert.Equal(c.Misses, c.DemandReads);
        Assert.Equal(layersThatMissed, c.IdleIssues);
        Assert.True(c.Misses > c.IdleIssues, "some layers should miss more than once");
        Assert.True(c.IdleIssueSeconds > 0 && c.DemandQueueSeconds > c.IdleIssueSeconds, $"queue {c.DemandQueueSeconds} s, idle issue {c.IdleIssueSeconds} s");
        var d = c - default(ExpertSourceCounters);
        Assert.Equal(c.DemandReads, d.DemandReads);
        Assert.Equal(c.IdleIssueSeconds, (c + default(ExpertSourceCounters)).IdleIssueSeconds);
    }

    [Fact]
    public void BudgetBelowTheWorkingBuffersIsRejected()
    {
        using var file = new SyntheticExpertFile(1, 4, seed: 60);
        using var store = new ExpertStore(file.Layout, IoMode.Buffered);
        var options = new StreamingOptions { BudgetBytes = (3 * store.BufferBytes) + 1, WorkingBuffers = 4 };
        var ex = Assert.Throws<ArgumentException>(() => new StreamingExpertSource(store, options, new ArrayLru(0, 1, 4), new DemandFirstFifo(1)));
        Assert.Contains("holds 3 expert buffers", ex.Message);
    }

    [Fact]
    public void CachePolicyLargerThanTheBudgetIsRejected()
    {
        using var file = new SyntheticExpertFile(1, 8, seed: 61);
        using var store = new ExpertStore(file.Layout, IoMode.Buffered);
        var options = new StreamingOptions { BudgetBytes = 6 * store.BufferBytes, WorkingBuffers = 4 };
        var ex = Assert.Throws<ArgumentException>(() => new StreamingExpertSource(store, options, new ArrayLru(options.BudgetBytes, 1, 8), new DemandFirstFifo(1)));
        Assert.Contains("CacheCapacity", ex.Message);
    }

    private static ExpertSourceCounters Idle(StreamingExpertSource source)
    {
        source.WaitIdle(); // prefetches may still be in flight after the last Acquire
        return source.Counters;
    }

    /// <summary>Skewed routing (a few hot experts per layer, as real routers show), so small caches see hits.</summary>
    /// <summary>
    /// Decodes <paramref name="tokens"/> tokens of random top-k routing: each layer's experts requested, acquired,
    /// checked by <paramref name="check"/> (layer, expert, weights) and released; after each layer the budget's
    /// accounting must hold (slab within budget, the working buffers free of cache, nothing left pinned), then
    /// <paramref name="afterLayer"/> (token) runs.
    /// </summary>
    private static void RandomTokens(StreamingExpertSource source, int tokens, Random rng, Action<int, int, ExpertWeights> check, Action<int>? afterLayer = null)
    {
        for (int t = 0; t < tokens; t++)
        {
            source.BeginToken(t);
            for (int l = 0; l < Layers; l++)
            {
                int[] chosen = Route(rng);
                source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen, Weights = new float[] { 0.4f, 0.3f, 0.2f, 0.1f } });
                foreach (int e in chosen)
                {
                    check(l, e, source.Acquire(l, e));
                    source.Release(l, e);
                }

                var acc = source.Accounting();
                Assert.True(acc.SlabBytes <= acc.BudgetBytes && acc.Occupied <= acc.Buffers && acc.Cached <= acc.Buffers - TopK);
                Assert.Equal(0, acc.Pinned);
                afterLayer?.Invoke(t);
            }
        }
    }

    private static int[] Route(Random rng)
    {
        var chosen = new int[TopK];
        for (int i = 0; i < TopK; i++)
        {
            int e;
            do e = (int)(Experts * Math.Pow(rng.NextDouble(), 3));
            while (chosen.AsSpan(0, i).Contains(e));
            chosen[i] = e;
        }

        return chosen;
    }
}
