using BenchmarkDotNet.Attributes;
using MoeLab.Engine.Policies;
using MoeLab.Strategies.Cache;

namespace MoeLab.Benchmarks;

/// <summary>
/// Cache lookups per second: a 1M-request routing sequence (32 layers × 64 experts, top-4, per-layer Zipf(1.1)
/// popularity with 50% reuse of the previous token's experts) replayed through a cache of 1/4 of the experts.
/// The cache stays warm across invocations, so the figure is the steady state; MemoryDiagnoser shows it allocates nothing.
/// Run: dotnet run -c Release --project bench/MoeLab.Benchmarks -- --filter '*CacheBenchmarks*' --job short
/// </summary>
[MemoryDiagnoser]
public class CacheBenchmarks
{
    private const int Layers = 32, Experts = 64, Top = 4, Requests = 1 << 20;

    private ExpertKey[] _requests = [];
    private ICachePolicy _lru = null!, _arc = null!, _s3Fifo = null!;

    [GlobalSetup]
    public void Setup()
    {
        _requests = Sequence(seed: 42);
        long capacity = Layers * Experts / 4;
        _lru = new Lru(capacity);
        _arc = new Arc(capacity);
        _s3Fifo = new S3Fifo(capacity);
        foreach (var cache in new[] { _lru, _arc, _s3Fifo }) CacheReplay.Run(cache, _requests); // warm: slot arrays at final size
    }

    [Benchmark(OperationsPerInvoke = Requests)]
    public long Lru() => CacheReplay.Run(_lru, _requests).Hits;

    [Benchmark(OperationsPerInvoke = Requests)]
    public long Arc() => CacheReplay.Run(_arc, _requests).Hits;

    [Benchmark(OperationsPerInvoke = Requests)]
    public long S3Fifo() => CacheReplay.Run(_s3Fifo, _requests).Hits;

    private static ExpertKey[] Sequence(int seed)
    {
        var rng = new Random(seed);
        var cumulative = new double[Experts];
        double sum = 0;
        for (int r = 0; r < Experts; r++) cumulative[r] = sum += 1 / Math.Pow(r + 1, 1.1);
        var order = new int[Layers][];
        for (int l = 0; l < Layers; l++)
        {
            order[l] = Enumerable.Range(0, Experts).ToArray();
            rng.Shuffle(order[l]);
        }

        var previous = new int[Layers, Top];
        var keys = new ExpertKey[Requests];
        Span<int> chosen = stackalloc int[Top];
        for (int i = 0; i < Requests;)
        {
            for (int l = 0; l < Layers && i < Requests; l++)
            {
                int n = 0;
                while (n < Top)
                {
                    int e = rng.NextDouble() < 0.5 && i >= Layers * Top
                        ? previous[l, rng.Next(Top)]
                        : order[l][Math.Min(Experts - 1, Array.BinarySearch(cumulative, rng.NextDouble() * sum) is int b && b < 0 ? ~b : b)];
                    if (chosen[..n].Contains(e)) continue;
                    chosen[n++] = e;
                }

                for (int k = 0; k < Top && i < Requests; k++)
                {
                    previous[l, k] = chosen[k];
                    keys[i++] = new ExpertKey(l, chosen[k]);
                }
            }
        }

        return keys;
    }
}
