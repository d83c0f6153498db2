using MoeLab.Harness.Simulation;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Tests.Simulation;

/// <summary>The storage cache below the device (a VM host's cache that O_DIRECT does not bypass): LRU, fit, replay, profile.</summary>
public sealed class StorageCacheTests
{
    [Fact]
    public void TheStorageCacheIsAnLruOverByteRanges()
    {
        // 250 bytes; objects of 100: reads 0 1 0 2 (evicts 1, the least recent) 1 (miss, evicts 0) 2 (hit).
        var c = new StorageCache(4, 250);
        Assert.False(c.Read(0, 100));
        Assert.False(c.Read(1, 100));
        Assert.True(c.Read(0, 100));
        Assert.False(c.Read(2, 100));
        Assert.False(c.Contains(1));
        Assert.True(c.Contains(0));
        Assert.False(c.Read(1, 100));
        Assert.False(c.Contains(0));
        Assert.True(c.Read(2, 100));
        Assert.Equal(2, c.Hits);
        Assert.Equal(4, c.Misses);
        Assert.Equal(200, c.ResidentBytes);
        // An object larger than the whole cache is never resident and evicts nothing.
        Assert.False(c.Read(3, 300));
        Assert.False(c.Read(3, 300));
        Assert.Equal(200, c.ResidentBytes);
    }

    [Fact]
    public void TheStorageCacheReadsAllocateNothing()
    {
        var c = new StorageCache(1024, 100 * 64);
        var rng = new Random(3);
        var ids = Enumerable.Range(0, 10_000).Select(_ => rng.Next(1024)).ToArray();
        foreach (int id in ids) c.Read(id, 64); // warm the JIT
        long before = GC.GetAllocatedBytesForCurrentThread();
        foreach (int id in ids) c.Read(id, 64);
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
        Assert.True(c.ResidentBytes <= 100 * 64);
    }

    [Theory]
    [InlineData(300)]
    [InlineData(600)]
    [InlineData(1000)]
    public void TheFitRecoversTheCacheSizeOfAnLruSweep(int cacheMb)
    {
        // Reads over regions of R under an LRU of C: t(R) = t_c + (t_d − t_c) · max(0, 1 − C / R).
        const double tc = 300e-6, td = 3000e-6;
        long c = cacheMb * 1_000_000L;
        long[] regions = [40_000_000, 170_000_000, 340_000_000, 680_000_000, 1_360_000_000, 2_720_000_000];
        var sweep = regions.Select(r => (r, tc + ((td - tc) * Math.Max(0, 1 - (c / (double)r))))).ToList();
        var fit = StorageCacheFit.Fit(sweep);
        Assert.InRange(fit.CacheBytes, c * 0.95, c * 1.05);
        Assert.InRange(fit.DeviceSeconds, td * 0.95, td * 1.05);
        // The device figure from the whole region, which the cache partly serves.
        Assert.Equal(td, StorageCacheFit.DeviceSeconds(sweep[^1].Item2, tc, regions[^1], c), 9);
    }

    [Fact]
    public void AFlatSweepMeansNoStorageCache()
    {
        var fit = StorageCacheFit.Fit([(40_000_000, 1000e-6), (340_000_000, 1050e-6), (1_360_000_000, 1080e-6)]);
        Assert.Equal(0, fit.CacheBytes);
        Assert.Equal(1080e-6, fit.DeviceSeconds, 12);
        Assert.Equal(1080e-6, StorageCacheFit.DeviceSeconds(1080e-6, 1000e-6, 1_360_000_000, 0), 12);
    }

    [Fact]
    public void ASweepTheLruCurveDoesNotFitMeansNoStorageCache()
    {
        // One slow region in the middle (another process on a shared disk), the whole file as fast as the smallest.
        var fit = StorageCacheFit.Fit([(42_000_000, 2584e-6), (170_000_000, 2694e-6), (340_000_000, 2709e-6), (679_000_000, 3780e-6), (1_359_000_000, 2263e-6)]);
        Assert.Equal(0, fit.CacheBytes);
    }

    [Fact]
    public void AReadOfAnEvictedExpertIsChargedAtTheStorageCachesRateWhileItHoldsIt()
    {
        // One layer, experts of 1 MB, an expert cache of one: token 2 re-reads expert 0 after 1 evicted it. The device
        // reads 1 MB in 1 ms, the storage cache in 0.1 ms; no dense part and free compute, so stall = read time.
        var trace = Steps(1, 4, [0], [1], [0]);
        SimulationResult Run(long storageCacheBytes) => Simulator.Run(new SimulationOptions
        {
            Trace = trace, ExpertBytes = 1_000_000, RecordTokens = true,
            Cost = new CostModel
            {
                ProfileName = "hand", ExpertBytes = 1_000_000, DenseBytesPerToken = 0, ExpertBytesPerSecond = double.PositiveInfinity, DenseBytesPerSecond = 1e9,
                BlockBytes = 1 << 20, QueueDepth = 1,
                Storage = new StorageModel([new DeviceProfile.ReadPoint { BlockKib = 1024, QueueDepth = 1, ReadMbPerS = 1000, LatencyUs = 0 }]),
                CachedStorage = storageCacheBytes > 0 ? new StorageModel([new DeviceProfile.ReadPoint { BlockKib = 1024, QueueDepth = 1, ReadMbPerS = 10_000, LatencyUs = 0 }]) : null,
                StorageCacheBytes = storageCacheBytes,
            },
        }, 1);

        var none = Run(0);
        var holdsTwo = Run(2_000_000);
        var holdsOne = Run(1_000_000);
        Assert.All(new[] { none, holdsTwo, holdsOne }, r => Assert.Equal(3, r.Misses)); // the expert cache is unchanged
        Assert.Null(none.StorageCacheHits);
        Assert.Equal(0.001, none.PerToken![2].StallSeconds, 12);
        Assert.Equal(1, holdsTwo.StorageCacheHits);
        Assert.Equal(0.0001, holdsTwo.PerToken![2].StallSeconds, 12);
        Assert.Equal(0.001, holdsTwo.PerToken[0].StallSeconds, 12); // a first read comes from the device
        Assert.Equal(0, holdsOne.StorageCacheHits); // 1 displaced 0 below too
        Assert.Equal(0.001, holdsOne.PerToken![2].StallSeconds, 12);
    }

    [Fact]
    public void AProfileCarriesItsStorageCacheThroughYaml()
    {
        const string yaml = """
            name: vm
            memory: { available_to_model_gib: 4 }
            storage:
              default_queue_depth: 4
              reads: [{ block_kib: 864, queue_depth: 4, read_mb_per_s: 1000, latency_us: 3500 }]
              cache:
                mib: 600
                reads: [{ block_kib: 864, queue_depth: 4, read_mb_per_s: 4000, latency_us: 880 }]
            compute: { expert_gb_per_s: 1, dense_gb_per_s: 1 }
            """;
        var p = DeviceProfile.Parse(yaml, "vm.yaml");
        Assert.Equal(600L << 20, p.Storage.Cache!.Bytes);
        var again = DeviceProfile.Parse(p.ToYaml(), "again.yaml");
        Assert.Equal(880, again.Storage.Cache!.Reads.Single().LatencyUs);
        var cost = CostModel.For(again, MoeLab.Engine.Model.ModelPreset.Find("qwen3-30b-a3b")!, MoeLab.Engine.Gguf.GgmlType.Q4_K, MoeLab.Engine.Gguf.GgmlType.Q4_K);
        Assert.True(cost.HasStorageCache);
        Assert.Equal(600L << 20, cost.StorageCacheBytes);

        // Devices without one (the phone and laptop profiles) omit it; an empty one is an error, not "none".
        Assert.Null(DeviceProfile.Parse(yaml.Replace("  cache:\n    mib: 600\n    reads: [{ block_kib: 864, queue_depth: 4, read_mb_per_s: 4000, latency_us: 880 }]\n", ""), "bare.yaml").Storage.Cache);
        Assert.Throws<InvalidDataException>(() => DeviceProfile.Parse(yaml.Replace("mib: 600", "mib: 0"), "zero.yaml"));
    }

    private static RoutingTrace Steps(int layers, int experts, params int[][] steps)
    {
        var b = new RoutingTraceBuilder(layers, experts, false);
        foreach (var s in steps) b.AddStep(s);
        return b.Build();
    }
}
