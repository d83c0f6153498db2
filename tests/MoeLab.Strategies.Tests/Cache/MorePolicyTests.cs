using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;
using MoeLab.Strategies.Cache;
using static MoeLab.Strategies.Tests.Cache.CacheTestKit;

namespace MoeLab.Strategies.Tests.Cache;

public sealed class ArcTests
{
    [Fact]
    public void ARepeatedExpertIsProtectedFromOneOffs()
    {
        // A is hit once (moves to T2); C then evicts B from T1 into B1, and A still hits. LRU would have evicted A.
        Assert.Equal("mhmmh", Outcomes(new Arc(2), Letters("AABCA")));
        Assert.Equal("mhmmm", Outcomes(new Lru(2), Letters("AABCA")));
    }

    [Fact]
    public void AGhostHitGrowsTheRecencyTargetAndEntersTheFrequencyList()
    {
        var arc = new Arc(2);
        var sink = new Evictions();
        // B returns from B1: p grows to 1, T1 (size 1) is not above it, so REPLACE evicts T2's A.
        Assert.Equal("mhmmhm", Outcomes(arc, Letters("AABCAB"), sink));
        Assert.Equal([new ExpertKey(0, 1), new ExpertKey(0, 0)], sink.Keys);
        Assert.Equal(1, arc.TargetRecencySize);
        Assert.True(arc.Contains(new ExpertKey(0, 1)) && arc.Contains(new ExpertKey(0, 2)));
    }
}

public sealed class S3FifoTests
{
    [Fact]
    public void OneOffsLeaveThroughTheSmallQueueAndReturningExpertsGoToMain()
    {
        // Capacity 4 with a half-size small queue (2), ghost 3. E evicts A from small into the ghost; A's return is a
        // ghost hit (to main), evicting B likewise; B returns to main too; A then hits; F evicts C then D from small.
        var s3 = new S3Fifo(4, smallSizeRatio: 0.5);
        var sink = new Evictions();
        Assert.Equal("mmmmmmmhm", Outcomes(s3, Letters("ABCDEABAF"), sink));
        Assert.Equal(Letters("ABCD"), sink.Keys);
        Assert.All(Letters("ABEF"), k => Assert.True(s3.Contains(k)));
    }

    [Fact]
    public void UnitExpertsNeedASmallQueueLargerThanOneExpert()
    {
        // libCacheSim's rule: floor(10 × 0.1) = 1 is not larger than an expert of size 1, so nothing is cached.
        Assert.Equal("mmm", Outcomes(new S3Fifo(10), Letters("AAA")));
        Assert.Equal("mhh", Outcomes(new S3Fifo(20), Letters("AAA")));
    }
}

public sealed class LfuDecayTests
{
    [Fact]
    public void OldPopularityDecaysAwayWithAShortHalfLife()
    {
        var sink = new Evictions();
        Outcomes(new LfuDecay(2, halfLifeRequests: 1), Letters("AAABC"), sink);
        Assert.Equal([new ExpertKey(0, 0)], sink.Keys); // A's 3 requests decayed below B's fresh one
        sink.Keys.Clear();
        Outcomes(new LfuDecay(2, halfLifeRequests: 1000), Letters("AAABC"), sink);
        Assert.Equal([new ExpertKey(0, 1)], sink.Keys); // with a long half-life it is plain LFU
    }
}

public sealed class BeladyTests
{
    private static FutureIndex Future(ExpertKey[] requests)
    {
        var b = new RoutingTraceBuilder(1, 64, withWeights: false);
        foreach (var k in requests) b.AddStep([k.Expert]);
        return new FutureIndex(b.Build(), 0);
    }

    [Theory]
    [InlineData("ABCDABEABCDE", 3, 7)] // the classic string: 7 faults with 3 frames
    [InlineData("ABCDABEABCDE", 4, 6)]
    [InlineData("ABACBA", 2, 4)]
    public void MissCountsMatchTheKnownOptimum(string sequence, int capacity, int misses)
    {
        var requests = Letters(sequence);
        Assert.Equal(misses, Misses(new Belady(capacity, Future(requests)), requests));
    }

    [Fact]
    public void BypassDeclinesAnExpertNeededLaterThanEveryResidentOne()
    {
        // Capacity 1: A B A. Admitting B would evict A, needed sooner; with bypass B is streamed and A hits.
        var requests = Letters("ABA");
        Assert.Equal("mmm", Outcomes(new Belady(1, Future(requests)), requests));
        Assert.Equal("mmh", Outcomes(new Belady(1, Future(requests), bypass: true), requests));
    }

    [Fact]
    public void NoOnlinePolicyMissesLessOnRandomTraces()
    {
        var context = new StrategyContext { Shape = new ModelShape(4, 16, 2, 1, 8), Unit = CacheUnit.Experts };
        for (int seed = 0; seed < 60; seed++)
        {
            var rng = new Random(seed);
            int layers = 1 + rng.Next(4), experts = 2 + rng.Next(15), tokens = 50 + rng.Next(150);
            var b = new RoutingTraceBuilder(layers, experts, withWeights: false);
            for (int s = 0; s < layers * tokens; s++)
            {
                // skewed popularity so caches matter
                int e = (int)(experts * Math.Pow(rng.NextDouble(), 2));
                b.AddStep([e]);
            }

            var trace = b.Build();
            int capacity = 1 + rng.Next(layers * experts);
            var ctx = new StrategyContext
            {
                Shape = new ModelShape(layers, experts, 1, 1, 8), Capacity = capacity, Unit = CacheUnit.Experts, Future = trace,
            };
            long Misses(string spec) => CacheReplay.Run(StrategyCatalog.CreateCache(StrategySpec.Parse(spec), ctx), trace, 0, _ => 1).Misses;
            long opt = Misses("belady"), optBypass = Misses("belady:bypass=true");
            Assert.True(optBypass <= opt, $"seed {seed}");
            foreach (string online in new[] { "lru", "fifo", "lfu", "arc", "s3-fifo", "lfu-decay:half_life_tokens=4", "s3-fifo:small_size_ratio=0.5" })
                Assert.True(opt <= Misses(online), $"seed {seed}: belady {opt} > {online}");
            foreach (string online in new[] { "lru:admission=second-hit", "lfu:admission=second-hit", "arc:admission=bypass" })
                Assert.True(optBypass <= Misses(online), $"seed {seed}: belady-bypass {optBypass} > {online}");
        }

        _ = context;
    }
}

public sealed class ProfilePolicyTests
{
    private static RoutingTrace Profile()
    {
        // Layer 0 always chooses expert 3; layer 1 spreads evenly over experts 0..3.
        var b = new RoutingTraceBuilder(2, 8, withWeights: false);
        for (int t = 0; t < 40; t++)
        {
            b.AddStep([3]);
            b.AddStep([t % 4]);
        }

        return b.Build();
    }

    [Fact]
    public void StaticHotPinsTheMostRequestedAndStreamsTheRest()
    {
        var hot = new StaticHot(3, Profile(), 0, 1);
        Assert.Equal(new ExpertKey(0, 3), hot.Pinned[0]);
        Assert.Equal(3, hot.Pinned.Count);
        // (0,3) is pinned, (0,5) never admitted; (1,0) and (1,1) are the next most requested (ties by id).
        Assert.Equal("mhmmhh", Outcomes(hot, [new(0, 3), new(0, 3), new(0, 5), new(1, 0), new(1, 0), new(0, 3)]));
        Assert.False(hot.Contains(new ExpertKey(0, 5)));
    }

    [Fact]
    public void LayeredLruGivesSpreadLayersMoreRoom()
    {
        // Effective experts: 1 for layer 0, 4 for layer 1. 7 experts: one each, the other 5 split 1 : 4.
        Assert.Equal([2L, 5L], LayeredLru.Quotas(Profile(), 0, 7));
        var cache = StrategyCatalog.CreateCache(StrategySpec.Of("layered-lru"), new StrategyContext
        {
            Shape = new ModelShape(2, 8, 1, 100, 8), Capacity = 700, Unit = CacheUnit.Bytes, Profile = Profile(),
        });
        Assert.Equal([200L, 500L], Assert.IsType<PerLayerCache>(cache).Layers.Select(l => l.Capacity));
    }
}
