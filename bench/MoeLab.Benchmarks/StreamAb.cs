using System.Diagnostics;
using System.Globalization;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Io;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;
using MoeLab.Harness.Experiments;
using MoeLab.Strategies;
using static MoeLab.Benchmarks.BenchArgs;

namespace MoeLab.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/MoeLab.Benchmarks -- stream-ab MODEL.gguf --budget 300MiB [--depth 8] [--io direct] [--threads 2] [--rounds 7] [--tokens 32] [--only one-by-one,batched+THP]</c>:
/// where a streamed token's compute goes. Five engines on the same file in one process, timed alternately (so machine
/// load hits them alike), each streaming under the same budget (LRU, FIFO at the depth) except the last:
/// "one-by-one" (file layout, each expert in its own 2 dispatches: the engine before batching), "batched" (file
/// layout, whatever has landed computed together), "repacked" (batched, experts repacked into Interleaved8 on
/// arrival: the default) and "in-RAM" (all experts resident). Greedy decoding gives the same tokens, so every streaming
/// engine sees the same hits and misses. Prints per variant the median token, its compute (outside stalls) and stall,
/// reads-in-flight time, reader-thread repack time, and per-round ratios against one-by-one.
/// </summary>
public static class StreamAb
{
    // name, batched, repacked on arrival, huge pages; the last is the all-in-RAM engine
    private static readonly (string Name, bool Batched, bool Interleave, bool HugePages)[] All =
    [
        ("one-by-one+THP", false, false, true),
        ("batched+THP", true, false, true),
        ("one-by-one", false, false, false),
        ("batched", true, false, false),
        ("batched+THP+repack", true, true, true),
        ("in-RAM", true, true, true),
    ];

    public static void Run(string[] args)
    {
        string path = args[0];
        int threads = Int(args, "--threads", 2), rounds = Int(args, "--rounds", 6), tokens = Int(args, "--tokens", 32), depth = Int(args, "--depth", 8);
        if (!ByteSize.TryParse(Opt(args, "--budget") ?? "300MiB", out long budget)) throw new ArgumentException("--budget: a size such as 300MiB");
        var io = IoModes.Parse(Opt(args, "--io") ?? "direct");
        var only = (Opt(args, "--only") ?? string.Join(',', All.Select(v => v.Name))).Split(',');
        Variants = [.. All.Where(v => v.Name == "in-RAM" || only.Contains(v.Name))];
        var sources = new List<StreamingExpertSource>();
        var stores = new List<ExpertStore>();
        var models = new List<MoeModel>();
        var switches = new List<Switchable>();
        var instanceOf = new int[Streamed]; // variants differing only in batching share one engine (no instance-to-instance bias)
        try
        {
            for (int v = 0; v < Streamed; v++)
            {
                var (_, _, interleave, hugePages) = Variants[v];
                int same = Array.FindIndex(Variants, 0, v, u => u.Interleave == interleave && u.HugePages == hugePages);
                if (same >= 0)
                {
                    instanceOf[v] = instanceOf[same];
                    continue;
                }

                instanceOf[v] = models.Count;
                models.Add(MoeModel.Load(path, new ModelOptions
                {
                    Threads = threads,
                    MaxContext = 256,
                    ExpertSource = layout =>
                    {
                        var store = new ExpertStore(layout, io);
                        stores.Add(store);
                        var options = new StreamingOptions { BudgetBytes = budget, Interleave = interleave, HugePages = hugePages };
                        var context = new StrategyContext
                        {
                            Shape = new ModelShape(layout.Layers, layout.ExpertsPerLayer, 8, layout.MaxExpertBytes, 0),
                            Capacity = StreamingExpertSource.CacheCapacity(store, options),
                        };
                        var source = new StreamingExpertSource(store, options, StrategyCatalog.CreateCache(StrategySpec.Parse("lru"), context),
                            StrategyCatalog.CreateIo(StrategySpec.Parse($"fifo:queue_depth={depth}"), context));
                        sources.Add(source);
                        switches.Add(new Switchable(source));
                        return switches[^1];
                    },
                }));
            }

            models.Add(MoeModel.Load(path, new ModelOptions { Threads = threads, MaxContext = 256 }));
            int n = Variants.Length;
            var figures = new List<Figures>[n];
            for (int i = 0; i < n; i++) figures[i] = [];
            for (int r = -1; r < rounds; r++)
            {
                for (int step = 0; step < n; step++)
                {
                    int i = (step + Math.Max(r, 0)) % n; // each round starts one engine later: no engine always runs right after another
                    if (i < Streamed) switches[instanceOf[i]].Batched = Variants[i].Batched;
                    var f = i < Streamed ? Decode(models[instanceOf[i]], sources[instanceOf[i]], tokens) : Decode(models[^1], null, tokens);
                    if (r >= 0) figures[i].Add(f); // round -1 warms the caches and the JIT
                }
            }

            Console.WriteLine(Inv($"{Path.GetFileName(path)}, budget {ByteSize.Format(budget)}, {io.Name()}, depth {depth}, {threads} threads, tg{tokens} × {rounds} rounds (medians):"));
            Console.WriteLine("| engine | t/s | token ms | compute ms | stall ms | reads in flight ms | repack ms (readers) | process CPU ms (of it kernel) | hit rate |");
            Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
            for (int i = 0; i < n; i++)
            {
                var fs = figures[i];
                Console.WriteLine(Inv($"| {Variants[i].Name} | {1e3 / Median(fs, f => f.TokenMs):F2} | {Median(fs, f => f.TokenMs):F1} | {Median(fs, f => f.TokenMs - f.StallMs):F1} | {Median(fs, f => f.StallMs):F1} | {Median(fs, f => f.IoBusyMs):F1} | {Median(fs, f => f.RepackMs):F2} | {Median(fs, f => f.CpuMs):F1} ({Median(fs, f => f.SysMs):F1}) | {Median(fs, f => f.HitRate):P1} |"));
            }

            for (int i = 1; i < n; i++)
            {
                var ratios = figures[i].Zip(figures[0], (a, b) => b.TokenMs / a.TokenMs).Order().ToList();
                var compute = figures[i].Zip(figures[0], (a, b) => (b.TokenMs - b.StallMs) / (a.TokenMs - a.StallMs)).Order().ToList();
                Console.WriteLine(Inv($"{Variants[i].Name} / {Variants[0].Name} speed per round: median {ratios[(ratios.Count - 1) / 2]:F3} [{string.Join(' ', ratios.Select(x => x.ToString("F2", CultureInfo.InvariantCulture)))}]; compute outside stalls {compute[compute.Count / 2]:F3}× faster"));
            }

            for (int i = 0; i < Streamed; i++)
            {
                var ratio = figures[i].Zip(figures[Streamed], (a, b) => a.TokenMs / Math.Max(a.IoBusyMs, b.TokenMs)).Order().ToList();
                var own = figures[i].Select(a => a.TokenMs / Math.Max(a.IoBusyMs, a.TokenMs - a.StallMs)).Order().ToList();
                Console.WriteLine(Inv($"{Variants[i].Name}: token / max(reads in flight, compute outside stalls) median {own[own.Count / 2]:F3}; token / max(reads in flight, in-RAM token of the same round) median {ratio[ratio.Count / 2]:F3}"));
            }

            if (File.Exists("/proc/loadavg")) Console.WriteLine("load " + File.ReadAllText("/proc/loadavg").Trim());
        }
        finally
        {
            foreach (var m in models) m.Dispose();
            foreach (var s in sources) s.Dispose();
            foreach (var s in stores) s.Dispose();
        }
    }

    private static (string Name, bool Batched, bool Interleave, bool HugePages)[] Variants = All;

    private static int Streamed => Variants.Length - 1;

    private readonly record struct Figures(double TokenMs, double StallMs, double IoBusyMs, double RepackMs, double HitRate, double CpuMs, double SysMs);

    private static Figures Decode(MoeModel m, StreamingExpertSource? source, int tokens)
    {
        m.Reset();
        source?.WaitIdle();
        var before = source?.Counters ?? default;
        int token = 1;
        var self = Process.GetCurrentProcess();
        var cpu = self.TotalProcessorTime;
        var sys = self.PrivilegedProcessorTime;
        long start = Stopwatch.GetTimestamp();
        for (int t = 0; t < tokens; t++)
        {
            var logits = m.Forward(token);
            int best = 0;
            for (int k = 1; k < logits.Length; k++) if (logits[k] > logits[best]) best = k;
            token = best;
        }

        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds / tokens;
        self.Refresh();
        double cpuMs = (self.TotalProcessorTime - cpu).TotalMilliseconds / tokens;
        double sysMs = (self.PrivilegedProcessorTime - sys).TotalMilliseconds / tokens;
        var c = (source?.Counters ?? default) - before;
        return new Figures(ms, c.StallSeconds * 1e3 / tokens, c.IoBusySeconds * 1e3 / tokens, c.RepackSeconds * 1e3 / tokens, source is null ? 1 : c.HitRate, cpuMs, sysMs);
    }

    private static double Median(List<Figures> v, Func<Figures, double> f)
    {
        var s = v.Select(f).Order().ToArray();
        return s.Length == 0 ? double.NaN : (s[(s.Length - 1) / 2] + s[s.Length / 2]) / 2;
    }

    /// <summary>The streaming source, computed in batches or (with <see cref="Batched"/> off) one expert at a time as each lands.</summary>
    private sealed class Switchable(StreamingExpertSource inner) : IExpertSource
    {
        public bool Batched { get; set; } = true;

        public void Request(in RoutingObservation observed) => inner.Request(observed);

        public int NextReady(int layer, ReadOnlySpan<int> experts, ReadOnlySpan<bool> done) => inner.NextReady(layer, experts, done);

        public int ReadyExperts(int layer, ReadOnlySpan<int> experts, ReadOnlySpan<bool> done, Span<bool> ready)
        {
            if (Batched) return inner.ReadyExperts(layer, experts, done, ready);
            ready.Clear();
            ready[inner.NextReady(layer, experts, done)] = true;
            return 1;
        }

        public ExpertWeights Acquire(int layer, int expert) => inner.Acquire(layer, expert);

        public void Release(int layer, int expert) => inner.Release(layer, expert);

        public void BeginToken(int token) => inner.BeginToken(token);
    }
}
