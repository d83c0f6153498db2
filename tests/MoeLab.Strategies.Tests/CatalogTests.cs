using MoeLab.Engine.Policies;
using MoeLab.Strategies.Cache;
using static MoeLab.Strategies.Tests.Cache.CacheTestKit;

namespace MoeLab.Strategies.Tests;

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
        Assert.Contains("admission", e.Message);
    }

    [Fact]
    public void BadAdmissionValuesListTheAllowedOnes()
    {
        var e = Assert.Throws<StrategyException>(() => StrategyCatalog.CreateCache(StrategySpec.Parse("fifo:admission=sometimes"), Context));
        Assert.Equal("fifo", e.Policy);
        Assert.Equal("admission", e.Parameter);
        Assert.Contains("always, second-hit, bypass", e.Message);
    }

    [Fact]
    public void KnownNamesBuildThePolicyWithTheContextCapacity() =>
        Assert.Equal(4, StrategyCatalog.CreateCache(StrategySpec.Of("lru"), Context).Capacity);

    [Fact]
    public void EveryStrategyHasAUniqueNameAndDocumentedParameters()
    {
        var names = StrategyCatalog.All.Select(d => (d.Kind, d.Name)).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.All(StrategyCatalog.All, d => Assert.All(d.Parameters, p => Assert.False(string.IsNullOrWhiteSpace(p.Description))));
    }

    [Fact]
    public void PerLayerScopeGivesEachLayerItsOwnQuota()
    {
        var cache = StrategyCatalog.CreateCache(StrategySpec.Of("lru"), new StrategyContext
        {
            Shape = new ModelShape(2, 8, 2, 1000, 64), Capacity = 4, Unit = CacheUnit.Experts, Scope = CacheScope.PerLayer,
        });
        var perLayer = Assert.IsType<PerLayerCache>(cache);
        Assert.Equal([2L, 2L], perLayer.Layers.Select(l => l.Capacity));
        // Three experts of layer 0 do not fit its quota of two, however empty layer 1 is.
        Outcomes(cache, [new(0, 0), new(0, 1), new(0, 2), new(1, 0)]);
        Assert.False(cache.Contains(new ExpertKey(0, 0)));
        Assert.Equal(3, cache.Count);
    }

    [Fact]
    public void SecondHitAdmitsOnlyExpertsMissedBefore()
    {
        var cache = StrategyCatalog.CreateCache(StrategySpec.Parse("lru:admission=second-hit"), Context);
        Assert.Equal("mmhh", Outcomes(cache, Letters("AAAA")));
        Assert.Equal("mmmmhh", Outcomes(StrategyCatalog.CreateCache(StrategySpec.Parse("lru:admission=second-hit"), Context), Letters("ABABAB")));
    }

    [Fact]
    public void SecondHitForgetsMissesOutsideItsWindow()
    {
        var cache = StrategyCatalog.CreateCache(StrategySpec.Parse("lru:admission=second-hit,second_hit_window=1"), Context);
        Assert.Equal("mmmm", Outcomes(cache, Letters("ABAB")));
    }

    [Fact]
    public void BypassNeverCaches()
    {
        var cache = StrategyCatalog.CreateCache(StrategySpec.Parse("lfu:admission=bypass"), Context);
        Assert.Equal("mmm", Outcomes(cache, Letters("AAA")));
        Assert.Equal(0, cache.Count);
    }
}

public sealed class CatalogCoverageTests
{
    private sealed class Router : IRouterProbe
    {
        public int Layers => 2;

        public int ExpertsPerLayer => 8;

        public void RouterProbabilities(int layer, ReadOnlySpan<float> hidden, Span<float> probabilities) => probabilities.Fill(1f / 8);
    }

    private static Engine.Telemetry.RoutingTrace Trace()
    {
        var b = new Engine.Telemetry.RoutingTraceBuilder(2, 8, withWeights: false);
        for (int t = 0; t < 5; t++)
        {
            b.AddStep([t % 8, (t + 1) % 8]);
            b.AddStep([1, 2]);
        }

        return b.Build();
    }

    [Fact]
    public void EveryRegisteredStrategyBuildsWithItsDefaults()
    {
        var ctx = new StrategyContext
        {
            Shape = new ModelShape(2, 8, 2, 1000, 64), Capacity = 4, Unit = CacheUnit.Experts, Profile = Trace(), Future = Trace(), Router = new Router(),
        };
        foreach (var d in StrategyCatalog.All)
        {
            object s = StrategyCatalog.Create(d.Kind, StrategySpec.Of(d.Name), ctx);
            Assert.NotNull(s);
        }

        Assert.Equal(["lru", "fifo", "lfu", "arc", "s3-fifo", "belady", "lfu-decay", "static-hot", "layered-lru"],
            StrategyCatalog.All.Where(d => d.Kind == StrategyKind.Cache).Select(d => d.Name));
    }

    [Theory]
    [InlineData(StrategyKind.Cache, "belady", "future trace")]
    [InlineData(StrategyKind.Cache, "static-hot", "profile")]
    [InlineData(StrategyKind.Prefetch, "oracle", "future trace")]
    [InlineData(StrategyKind.Prefetch, "next-gate", "router")]
    [InlineData(StrategyKind.Precision, "per-expert-bits", "profile")]
    public void StrategiesMissingTheirInputsSayWhichInput(StrategyKind kind, string name, string needed)
    {
        var ctx = new StrategyContext { Shape = new ModelShape(2, 8, 2, 1000, 64), Capacity = 4, Unit = CacheUnit.Experts };
        var e = Assert.Throws<StrategyException>(() => StrategyCatalog.Create(kind, StrategySpec.Of(name), ctx));
        Assert.Equal(name, e.Policy);
        Assert.Contains(needed, e.Message);
    }

    [Fact]
    public void BadParameterValuesNameTheRangeOrChoices()
    {
        var ctx = new StrategyContext { Shape = new ModelShape(2, 8, 2, 1000, 64), Capacity = 4, Unit = CacheUnit.Experts };
        var e = Assert.Throws<StrategyException>(() => StrategyCatalog.Create(StrategyKind.Prefetch, StrategySpec.Parse("transition:mode=sideways"), ctx));
        Assert.Equal("mode", e.Parameter);
        Assert.Contains("layer, token", e.Message);
        e = Assert.Throws<StrategyException>(() => StrategyCatalog.Create(StrategyKind.Io, StrategySpec.Parse("fifo:queue_depth=0"), ctx));
        Assert.Equal("queue_depth", e.Parameter);
        Assert.Contains("outside [1, 1024]", e.Message);
        e = Assert.Throws<StrategyException>(() => StrategyCatalog.Create(StrategyKind.Routing, StrategySpec.Of("top-k-reduse"), ctx));
        Assert.Contains("did you mean 'top-k-reduce'", e.Message);
    }
}
