using BenchmarkDotNet.Attributes;
using MoeLab.Engine.Telemetry;
using MoeLab.Harness.Simulation;
using MoeLab.Harness.Traces;
using MoeLab.Strategies;

namespace MoeLab.Benchmarks;

/// <summary>
/// Simulator speed on a 1,000,000-access synthetic trace (32 layers × 64 experts × top-4 × 7,813 tokens, Zipf 0.8,
/// reuse 0.3, cross-layer 0.2): one replay (expert accesses/s = 1M / mean time) and a 20-point hit-rate curve
/// (capacities 5%..100% of the 2,048 experts, one replay per capacity, in parallel and sequentially).
/// Run: dotnet run -c Release --project bench/MoeLab.Benchmarks -- --filter '*SimBenchmarks*' --job short
/// </summary>
[MemoryDiagnoser]
public class SimBenchmarks
{
    private RoutingTrace _trace = null!;
    private SimulationOptions _options = null!;
    private long[] _curve = null!;

    [Params("lru", "lfu")]
    public string Cache { get; set; } = "lru";

    [GlobalSetup]
    public void Setup()
    {
        _trace = SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 32, Experts = 64, ExpertsPerToken = 4, Tokens = 7_813, Seed = 1 });
        _options = new SimulationOptions { Trace = _trace, Cache = StrategySpec.Of(Cache) };
        _curve = Enumerable.Range(1, 20).Select(i => (long)(2048 * i / 20)).ToArray();
    }

    /// <summary>One replay of 1,000,032 accesses at a capacity of a quarter of the experts.</summary>
    [Benchmark]
    public long Replay1M() => Simulator.Run(_options, 512).Hits;

    [Benchmark]
    public long Curve20PointsParallel() => Simulator.Curve(_options, _curve, parallel: true).Sum(r => r.Hits);

    [Benchmark]
    public long Curve20PointsSequential() => Simulator.Curve(_options, _curve, parallel: false).Sum(r => r.Hits);
}
