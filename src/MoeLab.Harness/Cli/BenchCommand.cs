using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Sampling;

namespace MoeLab.Harness.Cli;

/// <summary>
/// <c>moelab bench</c>: decode speed (llama-bench's "tg": n tokens after a short prompt, greedy, repeated) with all
/// experts in RAM or under a budget; with --llama-bench it runs llama.cpp's llama-bench on the same file and thread
/// count in the same session and prints the ratio.
/// </summary>
public sealed partial class BenchCommand : ICliCommand
{
    public string Name => "bench";

    public string Summary => "measure decode tokens/s (tg), optionally against llama.cpp's llama-bench on the same file";

    public string Usage =>
        "usage: moelab bench --model F.gguf [-n 64] [-r 3] [--threads N] [--budget 512MiB --io direct|buffered --cache lru]\n" +
        "                    [--llama-bench /path/to/llama-bench]\n" +
        "Prints mean ± stddev tokens/s over r repetitions (after one warm-up run).";

    public int Run(CliArgs args)
    {
        string model = args.Required("model");
        int n = args.Int("n", 64);
        int reps = args.Int("r", 3);
        int threads = args.Int("threads", Environment.ProcessorCount);
        long? budget = args.Option("budget") is { } b ? (MoeLab.Harness.Experiments.ByteSize.TryParse(b, out long v) ? v : throw new CliUsageException($"bad --budget '{b}'")) : null;
        string io = args.Option("io") ?? "direct";
        string cache = args.Option("cache") ?? "lru";
        string? llamaBench = args.Option("llama-bench");
        args.EnsureAllUsed();
        args.EnsureNoPositional();

        var speeds = new List<double>();
        using (var session = EngineSession.Open(model, new EngineSettings { BudgetBytes = budget, IoMode = io, Cache = cache, Threads = threads }))
        {
            var sampler = new Sampler(session.Model.Config.Vocab, SamplerOptions.Greedy);
            for (int r = -1; r < reps; r++)
            {
                session.Model.Reset();
                var result = session.Generator.Generate("The", n, sampler, stopAtEndOfGeneration: false);
                if (r >= 0)
                {
                    speeds.Add(result.TokensPerSecond);
                }
            }

            Console.WriteLine($"| model | experts | threads | test | t/s |");
            Console.WriteLine($"| --- | --- | ---: | --- | ---: |");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {Path.GetFileName(model)} | {session.IoModeLabel}{(budget is { } bb ? " " + MoeLab.Harness.Experiments.ByteSize.Format(bb) : "")} | {threads} | tg{n} | {Mean(speeds):F2} ± {Std(speeds):F2} |"));
        }

        if (llamaBench is not null)
        {
            double theirs = RunLlamaBench(llamaBench, model, n, reps, threads);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {Path.GetFileName(model)} | llama.cpp (llama-bench, mmap) | {threads} | tg{n} | {theirs:F2} |"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"MoeLab / llama.cpp = {Mean(speeds) / theirs:F3}"));
        }

        return 0;
    }

    private static double RunLlamaBench(string exe, string model, int n, int reps, int threads)
    {
        var psi = new ProcessStartInfo(exe, $"-m {model} -p 0 -n {n} -r {reps} -t {threads} -o csv") { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {exe}");
        string stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"llama-bench failed ({p.ExitCode}): {stderr[^Math.Min(stderr.Length, 800)..]}");
        }

        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = CsvFields(lines[0]);
        int col = Array.IndexOf(header, "avg_ts");
        if (col < 0 || lines.Length < 2)
        {
            throw new InvalidOperationException("llama-bench printed no avg_ts column");
        }

        return double.Parse(CsvFields(lines[^1])[col], CultureInfo.InvariantCulture);
    }

    private static string[] CsvFields(string line) => CsvField().Matches(line).Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value).ToArray();

    [GeneratedRegex("\"([^\"]*)\"|([^,]+)")]
    private static partial Regex CsvField();

    private static double Mean(List<double> xs) => xs.Count == 0 ? 0 : xs.Average();

    private static double Std(List<double> xs)
    {
        if (xs.Count < 2)
        {
            return 0;
        }

        double m = Mean(xs);
        return Math.Sqrt(xs.Sum(x => (x - m) * (x - m)) / (xs.Count - 1));
    }
}
