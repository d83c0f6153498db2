using System.Diagnostics;
using System.Globalization;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;
using static MoeLab.Benchmarks.BenchArgs;

namespace MoeLab.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/MoeLab.Benchmarks -- decode-ab MODEL.gguf [--threads 2] [--rounds 10] [--tokens 32]</c>:
/// the all-in-RAM decode as it was before huge pages, experts-together dispatches and capped chunks ("before": 4 KiB
/// pages, one expert per dispatch pair, 4 chunks per thread, no inline limit) against the engine's defaults ("after"),
/// both loaded in one process and timed alternately (before, after, before, …) so machine load hits both alike. Prints
/// median tokens/s, output-head ms per token, and the per-round after/before ratios.
/// </summary>
public static class DecodeAb
{
    public static void Run(string[] args)
    {
        string path = args[0];
        int threads = Int(args, "--threads", 2), rounds = Int(args, "--rounds", 10), tokens = Int(args, "--tokens", 32);
        ResidentExpertSource? beforeExperts = null; // the model does not own a source it was given
        using var before = MoeModel.Load(path, new ModelOptions
        {
            Threads = threads, MaxContext = 256, HugePages = false,
            ExpertSource = layout => new OneExpertAtATime(beforeExperts = new ResidentExpertSource(layout, interleave: true, hugePages: false)),
        });
        using var disposeExperts = beforeExperts;
        before.Pool.ChunkBytes = int.MaxValue;
        before.Pool.InlineBytes = 0;
        using var after = MoeModel.Load(path, new ModelOptions { Threads = threads, MaxContext = 256 });
        var models = new[] { before, after };
        var tps = new[] { new List<double>(), new List<double>() };
        var headMs = new[] { new List<double>(), new List<double>() };
        for (int r = -1; r < rounds; r++)
        {
            for (int i = 0; i < 2; i++)
            {
                var (rate, head) = Decode(models[i], tokens);
                if (r < 0) continue; // warm-up
                tps[i].Add(rate);
                headMs[i].Add(head);
            }
        }

        string[] names = ["before", "after"];
        for (int i = 0; i < 2; i++)
        {
            Console.WriteLine(Inv($"{names[i],-6} threads={threads} tg{tokens} t/s median {Median(tps[i]):F1} (max {tps[i].Max():F1}), output head {Median(headMs[i]):F2} ms/token"));
        }

        var ratios = tps[1].Zip(tps[0], (a, b) => a / b).ToList();
        Console.WriteLine(Inv($"after/before per round: median {Median(ratios):F3} [{string.Join(' ', ratios.Order().Select(v => v.ToString("F2", CultureInfo.InvariantCulture)))}]"));
        if (File.Exists("/proc/loadavg")) Console.WriteLine("load " + File.ReadAllText("/proc/loadavg").Trim());
    }

    private static (double TokensPerSecond, double HeadMs) Decode(MoeModel m, int tokens)
    {
        m.Reset();
        int token = 1;
        double head = 0;
        long start = Stopwatch.GetTimestamp();
        for (int t = 0; t < tokens; t++)
        {
            var logits = m.Forward(token);
            head += m.LastHeadSeconds;
            int best = 0;
            for (int k = 1; k < logits.Length; k++) if (logits[k] > logits[best]) best = k;
            token = best;
        }

        return (tokens / Stopwatch.GetElapsedTime(start).TotalSeconds, head / tokens * 1e3);
    }

    private static double Median(List<double> v)
    {
        var s = v.Order().ToArray();
        return s.Length == 0 ? double.NaN : s[s.Length / 2];
    }

    /// <summary>The resident source without <see cref="IExpertSource.AlwaysReady"/>: the model computes its experts one by one.</summary>
    private sealed class OneExpertAtATime(ResidentExpertSource inner) : IExpertSource
    {
        public void Request(in RoutingObservation observed) => inner.Request(observed);

        public ExpertWeights Acquire(int layer, int expert) => inner.Acquire(layer, expert);

        public void Release(int layer, int expert) => inner.Release(layer, expert);

        public void BeginToken(int token) => inner.BeginToken(token);
    }
}
