using System.Globalization;
using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;
using MoeLab.Strategies.Cache;

namespace MoeLab.Strategies.Tests.Cache;

/// <summary>
/// MoeLab's replacement policies against libCacheSim's, request for request: Data/libcachesim-misses.csv holds the
/// miss count, missed bytes and an FNV-1a hash of every request's hit/miss outcome that libCacheSim produced for the
/// same traces and capacities (provenance in Data/libcachesim/README.md).
/// </summary>
public sealed class LibCacheSimEqualityTests
{
    public sealed record Row(string Trace, int SkipTokens, string Algo, string Unit, string Sizes, long CacheSize,
        long Requests, long Misses, long MissBytes, string OutcomeFnv)
    {
        public override string ToString() => $"{Trace} {Algo} {Unit}={CacheSize}";
    }

    private static readonly Dictionary<string, string> PolicyNames = new()
    {
        ["lru"] = "lru", ["fifo"] = "fifo", ["lfu"] = "lfu", ["arc"] = "arc", ["s3fifo"] = "s3-fifo", ["belady"] = "belady",
    };

    /// <summary>The sizes regenerate.py gave experts in the byte-size runs.</summary>
    private static long VariedBytes(ExpertKey k) => 1000 + 250 * ((7 * k.Layer + 13 * k.Expert) % 5);

    public static IEnumerable<object[]> Rows()
    {
        var lines = File.ReadAllLines(TestTraces.DataPath("libcachesim-misses.csv"));
        foreach (string line in lines.Skip(1))
        {
            var f = line.Split(',');
            var row = new Row(f[0], Int(f[1]), f[2], f[3], f[4], Long(f[5]), Long(f[6]), Long(f[7]), Long(f[8]), f[9]);
            if (TraceOf(row.Trace) is null) continue; // the shared real trace is absent here
            yield return [row];
        }
    }

    [Fact]
    public void TheReferenceCoversEveryPolicyInBothUnitsAtSeveralSizes()
    {
        var rows = Rows().Select(r => (Row)r[0]).Where(r => r.Trace == "synthetic-8x32").ToList();
        foreach (string algo in PolicyNames.Keys)
        {
            foreach (string unit in new[] { "experts", "bytes" })
                Assert.True(rows.Count(r => r.Algo == algo && r.Unit == unit) >= 5, $"{algo} {unit}");
        }
    }

    [Theory]
    [MemberData(nameof(Rows))]
    public void MissesEqualLibCacheSimToTheLastRequest(Row row)
    {
        var trace = TraceOf(row.Trace)!;
        var requests = trace.RequestSequence(row.SkipTokens);
        Func<ExpertKey, long> size = row.Sizes switch
        {
            "unit" => _ => 1,
            "varied" => VariedBytes,
            _ => _ => long.Parse(row.Sizes["uniform-".Length..], CultureInfo.InvariantCulture),
        };
        var sizes = requests.Select(size).ToArray();
        var context = new StrategyContext
        {
            Shape = new ModelShape(trace.Layers, trace.ExpertsPerLayer, 2, 1500, 64),
            Capacity = row.CacheSize,
            Unit = row.Unit == "experts" ? CacheUnit.Experts : CacheUnit.Bytes,
            Future = trace,
            FutureSkipTokens = row.SkipTokens,
        };

        var counted = CacheReplay.Run(StrategyCatalog.CreateCache(StrategySpec.Of(PolicyNames[row.Algo]), context), requests, sizes);
        Assert.Equal(row.Requests, counted.Requests);
        Assert.Equal(row.Misses, counted.Misses);
        Assert.Equal(row.MissBytes, counted.BytesMissed);
        Assert.Equal(row.OutcomeFnv, OutcomeHash(StrategyCatalog.CreateCache(StrategySpec.Of(PolicyNames[row.Algo]), context), requests, sizes));
    }

    /// <summary>FNV-1a 64 over one byte per request (1 hit, 0 miss), as lcs_misses.c computes it.</summary>
    private static string OutcomeHash(ICachePolicy cache, ExpertKey[] requests, long[] sizes)
    {
        ulong fnv = 1469598103934665603UL;
        for (int t = 0; t < requests.Length; t++)
        {
            bool hit = cache.Access(requests[t], sizes[t], t);
            if (!hit) cache.Admit(requests[t], sizes[t], t, null);
            fnv = (fnv ^ (hit ? 1UL : 0UL)) * 1099511628211UL;
        }

        return fnv.ToString("x16", CultureInfo.InvariantCulture);
    }

    private static RoutingTrace? TraceOf(string name) => name switch
    {
        "synthetic-8x32" => TestTraces.Synthetic,
        "mixtral-8x7b-h39s" => TestTraces.Mixtral,
        _ => throw new InvalidDataException($"libcachesim-misses.csv: unknown trace '{name}'"),
    };

    private static int Int(string s) => int.Parse(s, CultureInfo.InvariantCulture);

    private static long Long(string s) => long.Parse(s, CultureInfo.InvariantCulture);
}
