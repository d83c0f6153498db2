using MoeLab.Engine.Experts;
using MoeLab.Engine.Io;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Tests.Experts;

public sealed class ExpertLayerCountersTests
{
    private const int Layers = 4;
    private const int Experts = 64;
    private const int TopK = 4;

    [Fact]
    public void PerLayerCountsFollowAnIndependentLruModelAndSumToTheTotals()
    {
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 60);
        using var store = new ExpertStore(file.Layout, IoMode.Buffered);
        var options = new StreamingOptions { BudgetBytes = (TopK + 24) * store.BufferBytes, WorkingBuffers = TopK };
        using var source = new StreamingExpertSource(store, options, new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts), new DemandFirstFifo(2));
        var model = new ArrayLru(24, Layers, Experts);
        var hits = new long[Layers];
        var misses = new long[Layers];
        var rng = new Random(60);
        for (int t = 0; t < 30; t++)
        {
            for (int l = 0; l < Layers; l++)
            {
                int[] chosen = Route(rng, l);
                source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen });
                foreach (int e in chosen)
                {
                    var key = new ExpertKey(l, e);
                    if (model.Access(key, 1, 0)) hits[l]++;
                    else
                    {
                        misses[l]++;
                        model.Admit(key, 1, 0, null);
                    }

                    source.Acquire(l, e);
                    source.Release(l, e);
                }
            }
        }

        var layers = source.LayerCounters;
        Assert.Equal(hits, layers.Hits.ToArray());
        Assert.Equal(misses, layers.Misses.ToArray());
        Assert.True(misses.Distinct().Count() > 1 && hits.All(h => h > 0), $"layers with different skew must differ: misses {string.Join(", ", misses)}");
        Assert.Equal(source.Counters.Hits, Sum(layers.Hits));
        Assert.Equal(source.Counters.Misses, Sum(layers.Misses));
    }

    [Fact]
    public void WithAPrefetcherTheThreeOutcomesAreDisjointPerLayerAndSumToTheTotals()
    {
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 61);
        using var store = new ExpertStore(file.Layout, IoMode.Buffered);
        var options = new StreamingOptions { BudgetBytes = (TopK + 10) * store.BufferBytes, WorkingBuffers = TopK };
        var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
        using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(2), new SameExpertsNextLayer(Layers));
        var sink = new PerLayerSink();
        source.EventSink = sink;
        var rng = new Random(61);
        int[] previous = Route(rng, 0);
        for (int t = 0; t < 30; t++)
        {
            for (int l = 0; l < Layers; l++)
            {
                int[] chosen = rng.Next(2) == 0 ? previous : Route(rng, l);
                previous = chosen;
                source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen });
                foreach (int e in chosen)
                {
                    source.Acquire(l, e);
                    source.Release(l, e);
                }
            }
        }

        source.WaitIdle();
        var c = source.Counters;
        var layers = source.LayerCounters;
        Assert.True(c.PrefetchHits > 0);
        Assert.Equal(c.Hits, Sum(layers.Hits));
        Assert.Equal(c.Misses, Sum(layers.Misses));
        Assert.Equal(c.PrefetchHits, Sum(layers.PrefetchHits));
        for (int l = 0; l < Layers; l++)
        {
            // The event stream (one event per demand, with its layer and outcome) agrees layer by layer.
            Assert.Equal(sink.Counts[l, (int)ExpertOutcome.Hit], layers.Hits[l]);
            Assert.Equal(sink.Counts[l, (int)ExpertOutcome.Miss], layers.Misses[l]);
            Assert.Equal(sink.Counts[l, (int)ExpertOutcome.PrefetchHit], layers.PrefetchHits[l]);
            Assert.Equal(30 * TopK, layers.Hits[l] + layers.Misses[l] + layers.PrefetchHits[l]);
        }
    }

    [Fact]
    public void ATallyCountsOnlyItsWindowsAndAllocatesNothing()
    {
        var counters = new ExpertLayerCounters(3);
        var tally = new ExpertLayerTally(counters);
        counters.Count(0, ExpertOutcome.Miss); // outside any window (a prompt or warm-up pass)
        tally.Begin();
        counters.Count(0, ExpertOutcome.Hit);
        counters.Count(2, ExpertOutcome.PrefetchHit);
        counters.Count(2, ExpertOutcome.Miss);
        tally.End();
        counters.Count(1, ExpertOutcome.Hit); // outside
        tally.Begin();
        counters.Count(1, ExpertOutcome.Miss);
        tally.End();
        Assert.Equal([1L, 0, 0], tally.Hits.ToArray());
        Assert.Equal([0L, 1, 1], tally.Misses.ToArray());
        Assert.Equal([0L, 0, 1], tally.PrefetchHits.ToArray());

        double bytes = AllocationProbe.BytesPerCall(() =>
        {
            tally.Begin();
            counters.Count(1, ExpertOutcome.Hit);
            tally.End();
        });
        Assert.True(bytes < AllocationProbe.NoPerCallAllocation, $"{bytes} bytes per window");
    }

    [Fact]
    public void ResidentSourceCountsEveryServedExpertAsAHitOfItsLayer()
    {
        using var file = new SyntheticExpertFile(Layers, 8, seed: 62);
        using var source = new ResidentExpertSource(file.Layout);
        for (int l = 0; l < Layers; l++)
        {
            for (int i = 0; i <= l; i++)
            {
                source.Acquire(l, i);
                source.Release(l, i);
            }
        }

        Assert.Equal([1L, 2, 3, 4], source.LayerCounters.Hits.ToArray());
        Assert.Equal(new long[Layers], source.LayerCounters.Misses.ToArray());
        Assert.Equal(source.Counters.Hits, Sum(source.LayerCounters.Hits));
    }

    private static long Sum(ReadOnlySpan<long> values)
    {
        long s = 0;
        foreach (long v in values) s += v;
        return s;
    }

    /// <summary>Skew that grows with the layer, so layers see different hit rates.</summary>
    private static int[] Route(Random rng, int layer)
    {
        var chosen = new int[TopK];
        for (int i = 0; i < TopK; i++)
        {
            int e;
            do e = (int)(Experts * Math.Pow(rng.NextDouble(), 1 + (2 * layer)));
            while (chosen.AsSpan(0, i).Contains(e));
            chosen[i] = e;
        }

        return chosen;
    }

    private sealed class PerLayerSink : IExpertEventSink
    {
        public readonly long[,] Counts = new long[Layers, 3];

        public void OnExpert(in ExpertEvent e) => Counts[e.Layer, (int)e.Outcome]++;
    }
}
