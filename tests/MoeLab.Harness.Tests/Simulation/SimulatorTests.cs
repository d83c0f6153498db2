using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;
using MoeLab.Harness.Simulation;
using MoeLab.Harness.Traces;
using MoeLab.Strategies;
using MoeLab.Strategies.Cache;

namespace MoeLab.Harness.Tests.Simulation;

public sealed class SimulatorTests
{
    private static RoutingTrace Steps(int layers, int experts, params int[][] steps)
    {
        var b = new RoutingTraceBuilder(layers, experts, false);
        foreach (var s in steps) b.AddStep(s);
        return b.Build();
    }

    [Fact]
    public void LruHitCountsMatchAHandCount()
    {
        // Requests 0 1 | 2 0 | 1 3 | 0 2 through LRU of 3 experts: miss miss miss hit hit miss(evicts 2) hit miss(evicts 1).
        var trace = Steps(1, 4, [0, 1], [2, 0], [1, 3], [0, 2]);
        var r = Simulator.Run(new SimulationOptions { Trace = trace }, 3);
        Assert.Equal(8, r.Requests);
        Assert.Equal(3, r.Hits);
        Assert.Equal(5, r.Misses);
        Assert.Equal(0, Simulator.Run(new SimulationOptions { Trace = trace }, 1).Hits);
    }

    public static TheoryData<string, string> CachePolicies()
    {
        var data = new TheoryData<string, string>();
        foreach (var d in StrategyCatalog.All.Where(d => d.Kind == StrategyKind.Cache))
        {
            data.Add(d.Name, "global");
            data.Add(d.Name, "per-layer");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CachePolicies))]
    public void HitCountsEqualCacheReplayOfTheSameCatalogPolicy(string policy, string scope)
    {
        var trace = SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 8, Experts = 32, ExpertsPerToken = 4, Tokens = 300, Seed = 3 });
        var cacheScope = scope == "global" ? CacheScope.Global : CacheScope.PerLayer;
        foreach (long capacity in new long[] { 0, 16, 64, 200, 256 })
        {
            var sim = Simulator.Run(new SimulationOptions { Trace = trace, SkipTokens = 10, Cache = StrategySpec.Of(policy), Scope = cacheScope, Profile = trace }, capacity);
            var cache = StrategyCatalog.CreateCache(StrategySpec.Of(policy), new StrategyContext
            {
                Shape = new ModelShape(8, 32, 4, 1, 0), Capacity = capacity, Unit = CacheUnit.Experts, Scope = cacheScope, Profile = trace,
                Future = trace, FutureSkipTokens = 10,
            });
            var direct = CacheReplay.Run(cache, trace, 10, _ => 1);
            Assert.Equal(direct.Hits, sim.Hits);
            Assert.Equal(direct.Misses, sim.Misses);
        }
    }

    [Fact]
    public void PerLayerScopeGivesEachLayerItsShareOfTheCapacity()
    {
        // Layer 0 cycles 0,1 (fits in 2); layer 1 cycles 0,1,2 (thrashes an LRU of 2). Global LRU of 4 holds all 5 keys? no: 5 > 4.
        var trace = Steps(2, 4, [0], [0], [1], [1], [0], [2], [1], [0], [0], [1], [1], [2]);
        var perLayer = Simulator.Run(new SimulationOptions { Trace = trace, Scope = CacheScope.PerLayer }, 4);
        // layer 0: 0m 1m 0h 1h 0h 1h → 4 hits; layer 1: 0m 1m 2m 0m 1m 2m → 0 hits.
        Assert.Equal(4, perLayer.Hits);
        Assert.Equal("per-layer", perLayer.Scope);
    }

    [Fact]
    public void CurveEqualsSingleRuns()
    {
        var trace = SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 4, Experts = 16, ExpertsPerToken = 2, Tokens = 200 });
        var o = new SimulationOptions { Trace = trace };
        long[] caps = [4, 8, 16, 32, 64];
        var curve = Simulator.Curve(o, caps);
        for (int i = 0; i < caps.Length; i++) Assert.Equal(Simulator.Run(o, caps[i]).Hits, curve[i].Hits);
        Assert.True(curve[^1].Hits >= curve[0].Hits);
        Assert.Equal(64 - 0, curve[^1].Misses); // 64 keys fit: only compulsory misses
    }

    /// <summary>A test double that knows the trace: predicts the next step's experts (next layer, or layer 0 of the next token).</summary>
    private sealed class NextStepOracle(RoutingTrace trace) : IPrefetcher
    {
        public string Name => "test-oracle";

        public int Predict(in RoutingObservation o, Span<ExpertKey> predictions)
        {
            int t = o.Token, l = o.Layer + 1;
            if (l == trace.Layers)
            {
                t++;
                l = 0;
            }

            if (t >= trace.Tokens) return 0;
            var ids = trace.Experts(t, l);
            for (int i = 0; i < ids.Length; i++) predictions[i] = new ExpertKey(l, ids[i]);
            return ids.Length;
        }
    }

    [Fact]
    public void PrefetchReadsTakeTheReadSlowdownUnderComputeAndDemandReadsDoNot()
    {
        // 1 MB experts, 1 ms to compute and 1 ms to read (depth 1). Layer 0's miss is read at once and waited for (1 ms);
        // the prefetch of layer 1's expert queues behind it (from 1 ms) and lands at 2 ms, as layer 1 starts; at twice the
        // time (read beside the compute) it lands at 3 ms and layer 1 waits 1 ms for it.
        var trace = Steps(2, 4, [0], [1]);
        var cost = new CostModel
        {
            ProfileName = "hand", ExpertBytes = 1_000_000, DenseBytesPerToken = 0, ExpertBytesPerSecond = 1e9, DenseBytesPerSecond = 1e9,
            BlockBytes = 1 << 20, QueueDepth = 1,
            Storage = new StorageModel([new DeviceProfile.ReadPoint { BlockKib = 1024, QueueDepth = 1, ReadMbPerS = 1000, LatencyUs = 0 }]),
        };
        SimulationResult Run(double slowdown) => Simulator.Run(
            new SimulationOptions { Trace = trace, Cost = cost with { PrefetchReadSlowdown = slowdown }, ExpertBytes = 1_000_000, RecordTokens = true, Prefetch = StrategySpec.Of("test-oracle"), PrefetchFactory = _ => new NextStepOracle(trace) }, 4);
        var same = Run(1);
        Assert.Equal(1, same.PrefetchHits);
        Assert.Equal(0.001, same.PerToken![0].StallSeconds, 12);
        Assert.Equal(0.003, same.WallSeconds!.Value, 12);
        var slowed = Run(2);
        Assert.Equal(0.002, slowed.PerToken![0].StallSeconds, 12);
        Assert.Equal(0.004, slowed.WallSeconds!.Value, 12);
        Assert.Equal(0.003, slowed.PerToken[0].IoSeconds, 12); // the disk is busy for the slowed read's whole time
    }

    [Fact]
    public void AnOraclePrefetcherHasFullRecallAndPrecision()
    {
        var trace = SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 4, Experts = 16, ExpertsPerToken = 2, Tokens = 100 });
        var r = Simulator.Run(new SimulationOptions { Trace = trace, Prefetch = StrategySpec.Of("test-oracle"), PrefetchFactory = _ => new NextStepOracle(trace) }, 64);
        Assert.Equal(1.0, r.PrefetchRecall);
        Assert.Equal(1.0, r.PrefetchPrecision);
        // All 64 experts fit, so nothing a prefetch brings in is evicted: only the first step (before any prediction) misses,
        // where the same cache without prefetch takes every compulsory miss.
        Assert.Equal(2, r.Misses);
        Assert.True(Simulator.Run(new SimulationOptions { Trace = trace }, 64).Misses > 30);
        Assert.Equal(r.PrefetchReads, r.PrefetchHits);
    }

    [Fact]
    public void PredictedTimesMatchAHandComputedCase()
    {
        // 2 layers, experts of 1 MB, dense 2 MB/token, 1 GB/s compute and SSD (latency 0.1 ms, below the bandwidth bound).
        var trace = Steps(2, 4, [0], [1], [0], [1]);
        var cost = new CostModel
        {
            ProfileName = "hand", ExpertBytes = 1_000_000, DenseBytesPerToken = 2_000_000, ExpertBytesPerSecond = 1e9, DenseBytesPerSecond = 1e9,
            BlockBytes = 1 << 20, QueueDepth = 1,
            Storage = new StorageModel([new DeviceProfile.ReadPoint { BlockKib = 1024, QueueDepth = 1, ReadMbPerS = 1000, LatencyUs = 100 }]),
        };
        var r = Simulator.Run(new SimulationOptions { Trace = trace, Cost = cost, ExpertBytes = 1_000_000, RecordTokens = true }, 4);
        // Token 0 per layer: dense 1 ms, miss read 1 ms (stall), expert 1 ms. Token 1: all hits, 2 ms dense + 2 ms experts.
        Assert.Equal(0.004, r.PerToken![0].ComputeSeconds, 12);
        Assert.Equal(0.002, r.PerToken[0].StallSeconds, 12);
        Assert.Equal(0.002, r.PerToken[0].IoSeconds, 12);
        Assert.Equal(0.0, r.PerToken[1].StallSeconds, 12);
        Assert.Equal(0.010, r.WallSeconds!.Value, 12);
        Assert.Equal(200, r.TokensPerSecond!.Value, 6);
        Assert.Equal(1_000_000, r.BytesPerToken!.Value);
    }

    [Fact]
    public void ComputeResumingAfterAStallIsChargedOncePerWait()
    {
        // The hand-computed case above with 0.3 ms of compute per resumption after a stall. Token 0, per layer: dense 1 ms,
        // wait 1 ms for the miss, resume 0.3 ms, expert 1 ms. Token 1: all hits, no wait, nothing charged.
        var trace = Steps(2, 4, [0], [1], [0], [1]);
        var cost = new CostModel
        {
            ProfileName = "hand", ExpertBytes = 1_000_000, DenseBytesPerToken = 2_000_000, ExpertBytesPerSecond = 1e9, DenseBytesPerSecond = 1e9,
            BlockBytes = 1 << 20, QueueDepth = 1, ResumeAfterStallSeconds = 0.0003,
            Storage = new StorageModel([new DeviceProfile.ReadPoint { BlockKib = 1024, QueueDepth = 1, ReadMbPerS = 1000, LatencyUs = 100 }]),
        };
        var r = Simulator.Run(new SimulationOptions { Trace = trace, Cost = cost, ExpertBytes = 1_000_000, RecordTokens = true }, 4);
        Assert.Equal(0.0046, r.PerToken![0].ComputeSeconds, 12);
        Assert.Equal(0.002, r.PerToken[0].StallSeconds, 12);
        Assert.Equal(0.004, r.PerToken[1].ComputeSeconds, 12);
        Assert.Equal(0.0106, r.WallSeconds!.Value, 12);

        // Two misses read back to back: the first wait is charged, the second expert has landed by the time the first is
        // computed (1 ms read, 1 ms compute + 0.3 ms resume), so it is computed without a wait and without a resumption.
        var two = Simulator.Run(new SimulationOptions { Trace = Steps(1, 4, [0, 1]), Cost = cost with { DenseBytesPerToken = 0 }, ExpertBytes = 1_000_000, RecordTokens = true }, 4);
        Assert.Equal(0.0023, two.PerToken![0].ComputeSeconds, 12);
        Assert.Equal(0.001, two.PerToken[0].StallSeconds, 12);
    }

    [Fact]
    public void CachedExpertsAreComputedWhileAMissIsRead()
    {
        // Token 0 brings expert 1 in; token 1 routes [0, 1]: 0 misses (read 1 ms), 1 hits. Like the engine (NextReady),
        // the hit is computed first (1 ms) while 0 is read, so nothing stalls; in routing order 0 would stall 1 ms.
        var trace = Steps(1, 4, [1], [0, 1]);
        var cost = new CostModel
        {
            ProfileName = "hand", ExpertBytes = 1_000_000, DenseBytesPerToken = 0, ExpertBytesPerSecond = 1e9, DenseBytesPerSecond = 1e9,
            BlockBytes = 1 << 20, QueueDepth = 1,
            Storage = new StorageModel([new DeviceProfile.ReadPoint { BlockKib = 1024, QueueDepth = 1, ReadMbPerS = 1000, LatencyUs = 0 }]),
        };
        var r = Simulator.Run(new SimulationOptions { Trace = trace, Cost = cost, ExpertBytes = 1_000_000, RecordTokens = true }, 4);
        Assert.Equal(1, r.PerToken![1].Misses);
        Assert.Equal(0.0, r.PerToken[1].StallSeconds, 12);
        Assert.Equal(0.002, r.PerToken[1].WallSeconds, 12);
        Assert.Equal(0.001, r.PerToken[1].IoSeconds, 12);
    }

    /// <summary>1 MiB reads: 1 ms alone, 2 ms each with four in flight.</summary>
    private static StorageModel OneMiBReads()
    {
        const long MiB = 1 << 20;
        return new StorageModel([
            new DeviceProfile.ReadPoint { BlockKib = 1024, QueueDepth = 1, ReadMbPerS = MiB / 1e3, LatencyUs = 1000 },
            new DeviceProfile.ReadPoint { BlockKib = 1024, QueueDepth = 4, ReadMbPerS = 4 * MiB / 2e3, LatencyUs = 2000 },
        ]);
    }

    [Fact]
    public void TheDiskQueueServesAFullQueueAtItsDepthAndALoneReadAtDepthOne()
    {
        const long MiB = 1 << 20;
        var storage = OneMiBReads();
        var disk = new DiskQueue(storage, 4);
        double last = 0;
        for (int i = 0; i < 8; i++) last = Math.Max(last, disk.Read(0, MiB, 7 - i));
        Assert.Equal(0.004, last, 9); // two waves of four 2 ms reads
        Assert.Equal(0.004, disk.BusySeconds, 9);
        Assert.Equal(0.011, disk.Read(0.010, MiB, 0), 9); // alone on an idle device: the depth-1 latency
        Assert.Equal(0.005, disk.BusySeconds, 9);
        // An expert of three slices on a depth-1 queue: back to back, each at the depth-1 figure.
        var serial = new DiskQueue(storage, 1);
        Assert.Equal(0.001, serial.Read(0, MiB, 2), 9);
        Assert.Equal(0.002, serial.Read(0, MiB, 1), 9);
        Assert.Equal(0.003, serial.Read(0, MiB, 0), 9);
    }

    [Fact]
    public void AnIdleReaderWakesBeforeItsReadAndABusyOneDoesNot()
    {
        const long MiB = 1 << 20;
        var storage = OneMiBReads();
        var disk = new DiskQueue(storage, 4, wakeSeconds: 0.0005);
        var ends = new double[8];
        for (int i = 0; i < 8; i++) ends[i] = disk.Read(0, MiB, 7 - i);
        Assert.All(ends[..4], e => Assert.Equal(0.0025, e, 9)); // four readers asleep: each wakes, then 2 ms
        Assert.All(ends[4..], e => Assert.Equal(0.0045, e, 9)); // taken as the first ones finish: no sleep between
        Assert.Equal(0.0115, disk.Read(0.010, MiB, 0), 9); // queued after the readers went idle: wakes again
    }

    [Fact]
    public void ReadsAreLatencyBoundWhenSmall()
    {
        var storage = new StorageModel([new DeviceProfile.ReadPoint { BlockKib = 4, QueueDepth = 1, ReadMbPerS = 40, LatencyUs = 100 }]);
        // 8 KiB in 4 KiB blocks at depth 1: 2 round trips of 100 µs = 200 µs > 8192 B / 40 MB/s = 204.8 µs? bandwidth bound wins.
        Assert.Equal(8192 / 40e6, storage.ReadSeconds(8192, 4096, 1), 12);
        // 2 KiB: one round trip of 100 µs > 51.2 µs of transfer.
        Assert.Equal(100e-6, storage.ReadSeconds(2048, 4096, 1), 12);
    }

    [Fact]
    public void StorageInterpolatesLatencyLinearlyInSizeAndDepthsInLogDepth()
    {
        // A device whose request costs 100 µs + 0.25 µs per KiB at depth 1 (and twice that at depth 4), measured at 128 KiB
        // and 8 MiB only: linear in size reproduces it at any size between; the old log2(size) interpolation gave 1058 µs
        // at 1 MiB where the device takes 356.
        static DeviceProfile.ReadPoint Point(double kib, int depth, double us) => new() { BlockKib = kib, QueueDepth = depth, LatencyUs = us, ReadMbPerS = depth * kib * 1024 / us };
        var s = new StorageModel([Point(128, 1, 132), Point(8192, 1, 2148), Point(128, 4, 264), Point(8192, 4, 4296)]);
        Assert.Equal(356e-6, s.At(1 << 20, 1).LatencySeconds, 12);
        Assert.Equal((1 << 20) / 356e-6, s.At(1 << 20, 1).BytesPerSecond, 0); // throughput follows: depth × size / latency
        Assert.Equal(712e-6, s.At(1 << 20, 4).LatencySeconds, 12);
        Assert.Equal(534e-6, s.At(1 << 20, 2).LatencySeconds, 12); // halfway in log2(depth) between 1 and 4
        Assert.Equal(132e-6, s.At(128 << 10, 1).LatencySeconds, 12); // exact at a measured point
        Assert.Equal(128 * 1024 / 132e-6, s.At(128 << 10, 1).BytesPerSecond, 0);
        Assert.Equal(0, s.Clamps(1 << 20));
        Assert.Equal(0, s.Clamps(8 << 20));

        // Outside: a smaller read keeps the smallest point's latency, a larger one the largest point's throughput.
        Assert.Equal(-1, s.Clamps(64 << 10));
        Assert.Equal(132e-6, s.ServiceSeconds(64 << 10, 1), 12);
        Assert.Equal(1, s.Clamps(16 << 20));
        Assert.Equal(2 * 2148e-6, s.ServiceSeconds(16 << 20, 1), 9);
        Assert.Equal(2 * 4296e-6, s.ServiceSeconds(16 << 20, 4), 9);
    }

    [Fact]
    public void StorageWithOneMeasuredSizeClampsEveryOtherSize()
    {
        var s = new StorageModel([new DeviceProfile.ReadPoint { BlockKib = 864, QueueDepth = 4, ReadMbPerS = 4 * 864 * 1024 / 684e-6 / 1e6, LatencyUs = 684 }]);
        Assert.Equal(0, s.Clamps(864 << 10));
        Assert.Equal(684e-6, s.ServiceSeconds(864 << 10, 4), 9);
        Assert.Equal(-1, s.Clamps(128 << 10));
        Assert.Equal(1, s.Clamps(2 << 20));
    }

    [Fact]
    public void PageCacheModeReadsDenseWeightsWhenTheyAreEvicted()
    {
        var trace = Steps(1, 4, [0], [1], [2], [3]);
        var cost = new CostModel
        {
            ProfileName = "hand", ExpertBytes = 100, DenseBytesPerToken = 100, ExpertBytesPerSecond = 1e9, DenseBytesPerSecond = 1e9,
            BlockBytes = 4096, QueueDepth = 1,
            Storage = new StorageModel([new DeviceProfile.ReadPoint { BlockKib = 4, QueueDepth = 1, ReadMbPerS = 1, LatencyUs = 0 }]),
        };
        var o = new SimulationOptions { Trace = trace, Cost = cost, ExpertBytes = 100, Unit = CacheUnit.Bytes, DenseInCache = true };
        // 200 bytes of page cache: dense (100) + one expert; LRU evicts the dense block? No: dense is touched first each token,
        // so the older expert is the victim and dense stays. With 100 bytes, every token re-reads the dense block.
        Assert.Equal(100 + 400, Simulator.Run(o, 200).BytesRead);
        Assert.Equal(400 + 400, Simulator.Run(o, 100).BytesRead);
    }

    [Fact]
    public void WarmupTokensFillTheCacheButAreNotCounted()
    {
        var trace = SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 4, Experts = 16, ExpertsPerToken = 2, Tokens = 100 });
        var all = Simulator.Run(new SimulationOptions { Trace = trace, RecordTokens = true }, 24);
        var warm = Simulator.Run(new SimulationOptions { Trace = trace, WarmupTokens = 30 }, 24);
        Assert.Equal(70, warm.Tokens);
        Assert.Equal(all.PerToken!.Skip(30).Sum(t => (long)t.Hits), warm.Hits);
        Assert.Equal(all.PerToken!.Skip(30).Sum(t => (long)t.Misses), warm.Misses);
        Assert.Equal(70 * 4 * 2, warm.Requests);
    }

    [Fact]
    public void TheCatalogOraclePrefetcherHasFullRecallInReplay()
    {
        var trace = SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 4, Experts = 16, ExpertsPerToken = 2, Tokens = 120, Seed = 9 });
        var r = Simulator.Run(new SimulationOptions { Trace = trace, SkipTokens = 20, Prefetch = StrategySpec.Of("oracle") }, 64);
        Assert.Equal(1.0, r.PrefetchRecall);
        Assert.Equal(1.0, r.PrefetchPrecision);
        Assert.Equal(2, r.Misses); // only the first replayed step, before any prediction
        var online = Simulator.Run(new SimulationOptions { Trace = trace, SkipTokens = 20, Prefetch = StrategySpec.Of("repeat-last") }, 64);
        Assert.True(online.PrefetchRecall < 1.0);
    }
}
