using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;
using MoeLab.Strategies.Cache;

namespace MoeLab.Strategies.Tests.Cache;

public sealed class CacheReplayTests
{
    private static RoutingTrace TwoLayerTrace()
    {
        // Token 0 is a prefill block listing every expert; tokens 1..3 choose (0,1), (0,2), (0,1) at both layers.
        var b = new RoutingTraceBuilder(2, 4, withWeights: false);
        b.AddStep([0, 1, 2, 3]);
        b.AddStep([0, 1, 2, 3]);
        foreach (int[] pair in new[] { new[] { 0, 1 }, [0, 2], [0, 1] })
        {
            b.AddStep(pair);
            b.AddStep(pair);
        }

        return b.Build();
    }

    [Fact]
    public void CountsHitsMissesAndBytesAfterSkippingTokens()
    {
        // Skipping the prefill token: a 4-expert (40-byte) LRU over (L0,0)(L0,1)(L1,0)(L1,1) | (L0,0)(L0,2)(L1,0)(L1,2) | ...
        // Hand-counted: 4 misses, then (L0,0) hit, (L0,2) miss, (L1,0) hit, (L1,2) miss, then (L0,0) hit,
        // (L0,1) miss, (L1,0) hit, (L1,1) miss → 12 requests, 4 hits.
        var result = CacheReplay.Run(new Lru(40), TwoLayerTrace(), skipTokens: 1, _ => 10);
        Assert.Equal(12, result.Requests);
        Assert.Equal(4, result.Hits);
        Assert.Equal(8, result.Misses);
        Assert.Equal(120, result.BytesRequested);
        Assert.Equal(80, result.BytesMissed);
    }

    [Fact]
    public void TheTraceAndTheFlatSequenceReplayAlike()
    {
        var trace = TwoLayerTrace();
        var a = CacheReplay.Run(new Lfu(5), trace, 0, _ => 1);
        var b = CacheReplay.Run(new Lfu(5), trace.RequestSequence(0));
        Assert.Equal(a, b);
    }

    [Fact]
    public void SteadyStateReplayAllocatesNothing()
    {
        var rng = new Random(3);
        var requests = Enumerable.Range(0, 50_000).Select(_ => new ExpertKey(rng.Next(32), rng.Next(64))).ToArray();
        var future = new RoutingTraceBuilder(1, 1, withWeights: false);
        future.AddStep([0]);
        var context = new StrategyContext
        {
            Shape = new ModelShape(32, 64, 2, 1, 8), Capacity = 300, Unit = CacheUnit.Experts, Scope = CacheScope.PerLayer,
        };
        var caches = new ICachePolicy[]
        {
            new Lru(300), new Fifo(300), new Lfu(300), new Arc(300), new S3Fifo(300), new LfuDecay(300, 64),
            new Belady(300, new FutureIndex(future.Build(), 0)),
            StrategyCatalog.CreateCache(StrategySpec.Parse("arc:admission=second-hit"), context),
        };
        foreach (ICachePolicy cache in caches)
        {
            CacheReplay.Run(cache, requests); // warm: slot arrays reach their final size
            long before = GC.GetAllocatedBytesForCurrentThread();
            CacheReplay.Run(cache, requests);
            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before == 0, cache.GetType().Name);
        }
    }
}
