using MoeLab.Engine.Policies;
using MoeLab.Strategies;
using MoeLab.Strategies.Cache;

namespace MoeLab.Strategies.Tests.Cache;

public sealed class LruTests
{
    private sealed class Evictions : IEvictionSink
    {
        public List<ExpertKey> Keys { get; } = [];

        public void OnEvicted(ExpertKey key, long size) => Keys.Add(key);
    }

    /// <summary>Replays expert ids of layer 0 with unit sizes; returns the misses.</summary>
    private static int Misses(ICachePolicy cache, int[] requests, Evictions? sink = null)
    {
        int misses = 0;
        for (int t = 0; t < requests.Length; t++)
        {
            var key = new ExpertKey(0, requests[t]);
            if (cache.Access(key, 1, t)) continue;
            misses++;
            cache.Admit(key, 1, t, sink);
        }

        return misses;
    }

    [Theory]
    // Hand-counted: capacity 2 over A B A C B A → A,B miss; A hit; C miss (evicts B); B miss (evicts A); A miss.
    [InlineData(new[] { 0, 1, 0, 2, 1, 0 }, 2, 5)]
    [InlineData(new[] { 0, 1, 0, 2, 1, 0 }, 3, 3)]
    [InlineData(new[] { 0, 1, 2, 0, 1, 2 }, 2, 6)]
    [InlineData(new[] { 0, 0, 0, 0 }, 1, 1)]
    public void MissCountsMatchHandCountedSequences(int[] requests, int capacity, int expectedMisses) =>
        Assert.Equal(expectedMisses, Misses(new Lru(capacity), requests));

    [Fact]
    public void EvictsTheLeastRecentlyUsedAndReportsIt()
    {
        var sink = new Evictions();
        var lru = new Lru(2);
        Misses(lru, [0, 1, 0, 2], sink);
        Assert.Equal([new ExpertKey(0, 1)], sink.Keys);
        Assert.True(lru.Contains(new ExpertKey(0, 0)));
        Assert.Equal(2, lru.Used);
    }

    [Fact]
    public void ByteSizesEvictUntilTheNewExpertFits()
    {
        var lru = new Lru(100);
        lru.Admit(new ExpertKey(0, 0), 40, 0, null);
        lru.Admit(new ExpertKey(0, 1), 40, 1, null);
        lru.Admit(new ExpertKey(0, 2), 70, 2, null);
        Assert.Equal(1, lru.Count);
        Assert.Equal(70, lru.Used);
        Assert.False(lru.Admit(new ExpertKey(0, 3), 101, 3, null));
    }
}

public sealed class CatalogTests
{
    private static StrategyContext Context => new() { Shape = new ModelShape(2, 8, 2, 1000, 64), Capacity = 4, Unit = CacheUnit.Experts };

    [Fact]
    public void SpecsParseNameAndParameters()
    {
        var spec = StrategySpec.Parse("lfu-decay:half_life_tokens=64, admission=second-hit");
        Assert.Equal("lfu-decay", spec.Name);
        Assert.Equal("64", spec.Parameters["half_life_tokens"]);
        Assert.Equal("lfu-decay:admission=second-hit,half_life_tokens=64", spec.ToString());
    }

    [Fact]
    public void UnknownNamesSuggestTheNearestKnownOne()
    {
        var e = Assert.Throws<StrategyException>(() => StrategyCatalog.CreateCache(StrategySpec.Of("lur"), Context));
        Assert.Contains("did you mean 'lru'", e.Message);
    }

    [Fact]
    public void UnknownParametersNameThePolicyAndTheParameter()
    {
        var e = Assert.Throws<StrategyException>(() => StrategyCatalog.CreateCache(StrategySpec.Parse("lru:size=3"), Context));
        Assert.Equal("lru", e.Policy);
        Assert.Equal("size", e.Parameter);
    }

    [Fact]
    public void KnownNamesBuildThePolicyWithTheContextCapacity() =>
        Assert.Equal(4, StrategyCatalog.CreateCache(StrategySpec.Of("lru"), Context).Capacity);
}
