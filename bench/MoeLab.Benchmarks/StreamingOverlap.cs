using System.Diagnostics;
using System.Globalization;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Io;
using MoeLab.Engine.Policies;
using static MoeLab.Benchmarks.BenchArgs;

namespace MoeLab.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/MoeLab.Benchmarks -- streaming-overlap [--layers 8] [--tokens 40] [--depth 8] [--dir /tmp]</c>:
/// does StreamingExpertSource overlap expert reads with compute? Random top-8 routing over a qwen3-30b-a3b-shaped
/// file (direct I/O, 64-expert cache), a fixed busy-wait per expert standing in for the expert matvecs, at compute
/// of 0.5x/1x/2x the measured I/O time, without a prefetcher and with an oracle next-layer prefetcher. Prints token
/// time against I/O time, compute time and max(I/O, compute).
/// <para>
/// Measured 2026-11-25 (team VM, CPU oversubscribed by parallel builds, so the busy-wait ran 2-4x longer than asked and
/// every case ended compute-bound), 8 layers, 30 tokens, depth 8: token/max(I/O, compute) = 1.42, 1.19, 1.05 without a
/// prefetcher (each layer's first read stalls) and 1.04, 1.01, 1.00 with the oracle next-layer prefetcher (stall
/// 10, 1.8, 0.2 ms/token), at compute 0.5x, 1x, 2x of I/O.
/// </para>
/// </summary>
public static class StreamingOverlap
{
    private const int TopK = 8;

    public static void Run(string[] args)
    {
        int layers = Int(args, "--layers", 8), tokens = Int(args, "--tokens", 40), depth = Int(args, "--depth", 8);
        string dir = args.SkipWhile(a => a != "--dir").Skip(1).FirstOrDefault() ?? Path.GetTempPath();
        string path = Path.Combine(dir, $"moelab-streaming-overlap-{Environment.ProcessId}.bin");
        var layout = StreamingFile.Qwen3_30B_A3B(path, layers);
        StreamingFile.Write(layout);
        try
        {
            using var store = new ExpertStore(layout, IoMode.Direct);
            var rng = new Random(7);
            var routes = new int[tokens * layers][];
            for (int i = 0; i < routes.Length; i++) routes[i] = Enumerable.Range(0, layout.ExpertsPerLayer).OrderBy(_ => rng.Next()).Take(TopK).ToArray();

            // I/O alone sets the scale: what one token's reads take with no compute.
            var io = Measure(store, routes, layers, depth, computeMicros: 0, oracle: false);
            double ioPerExpert = io.Wall / (tokens * layers * TopK) * 1e6;
            Console.WriteLine(Inv($"{layers} layers, top-{TopK} of {layout.ExpertsPerLayer}, depth {depth}, direct; I/O only: {io.Wall / tokens * 1e3:F1} ms/token ({ioPerExpert:F0} us/expert), hit rate {io.HitRate:P1}"));
            Console.WriteLine("prefetch  compute/io  token_ms  io_busy_ms  compute_ms  max_ms  token/max  stall_ms  prefetch_hits");
            foreach (bool oracle in new[] { false, true })
            {
                foreach (double scale in new[] { 0.5, 1.0, 2.0 })
                {
                    var r = Measure(store, routes, layers, depth, ioPerExpert * scale, oracle);
                    double max = Math.Max(r.IoBusy, r.Compute);
                    Console.WriteLine(Inv($"{(oracle ? "oracle" : "none"),-8}  {scale,10:F1}  {r.Wall / tokens * 1e3,8:F1}  {r.IoBusy / tokens * 1e3,10:F1}  {r.Compute / tokens * 1e3,10:F1}  {max / tokens * 1e3,6:F1}  {r.Wall / max,9:F3}  {r.Stall / tokens * 1e3,8:F1}  {r.PrefetchHits,13}"));
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static (double Wall, double IoBusy, double Compute, double Stall, double HitRate, long PrefetchHits) Measure(
        ExpertStore store, int[][] routes, int layers, int depth, double computeMicros, bool oracle)
    {
        var options = new StreamingOptions { BudgetBytes = (64 + TopK + TopK) * store.BufferBytes, WorkingBuffers = TopK };
        var cache = new StreamingVsFio.FlatLru(StreamingExpertSource.CacheCapacity(store, options), layers, store.Layout.ExpertsPerLayer);
        using var source = new StreamingExpertSource(store, options, cache, new StreamingVsFio.Fifo(depth), oracle ? new OracleNextLayer(routes, layers) : null);
        long spin = (long)(computeMicros * Stopwatch.Frequency / 1e6);
        long computeTicks = 0;
        int tokens = routes.Length / layers;
        long start = Stopwatch.GetTimestamp();
        for (int t = 0; t < tokens; t++)
        {
            source.BeginToken(t);
            for (int l = 0; l < layers; l++)
            {
                int[] chosen = routes[(t * layers) + l];
                source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen });
                foreach (int e in chosen)
                {
                    source.Acquire(l, e);
                    long c0 = Stopwatch.GetTimestamp();
                    while (Stopwatch.GetTimestamp() - c0 < spin)
                    {
                    }

                    computeTicks += Stopwatch.GetTimestamp() - c0;
                    source.Release(l, e);
                }
            }
        }

        double wall = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var c = source.Counters;
        source.WaitIdle();
        return (wall, c.IoBusySeconds, (double)computeTicks / Stopwatch.Frequency, c.StallSeconds, c.HitRate, c.PrefetchHits);
    }

    /// <summary>Knows the routing: after layer l it names the experts of layer l+1 (of the next token after the last layer). An upper bound for real prefetchers.</summary>
    private sealed class OracleNextLayer(int[][] routes, int layers) : IPrefetcher
    {
        public string Name => "oracle-next-layer";

        public int Predict(in RoutingObservation observed, Span<ExpertKey> predictions)
        {
            int step = (observed.Token * layers) + observed.Layer + 1;
            if (step >= routes.Length) return 0;
            int layer = step % layers, n = Math.Min(routes[step].Length, predictions.Length);
            for (int i = 0; i < n; i++) predictions[i] = new ExpertKey(layer, routes[step][i]);
            return n;
        }
    }
}
