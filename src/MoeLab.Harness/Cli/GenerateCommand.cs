using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Sampling;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab generate</c>: generate text with the engine, all experts in RAM or streamed under a budget.</summary>
public sealed class GenerateCommand : ICliCommand
{
    public string Name => "generate";

    public string Summary => "generate text; with --budget, routed experts stream from SSD under that RAM budget";

    public string Usage =>
        "usage: moelab generate --model F.gguf --prompt \"...\" [-n 64] [--budget 512MiB] [--io direct|buffered]\n" +
        "                       [--cache lru] [--prefetch none] [--routing unchanged] [--precision native] [--io-scheduler fifo]\n" +
        "                       [--profile-trace F.mltrace]   (a routing trace of this model for static-hot, layered-lru, per-expert-bits)\n" +
        "                       [--temp 0] [--top-k 0] [--top-p 1] [--seed 42] [--threads N] [--json]\n" +
        "Without --budget every expert is resident (the in-RAM baseline). Strategy names: moelab strategies.";

    public int Run(CliArgs args)
    {
        string model = args.Required("model");
        string prompt = args.Required("prompt");
        int n = args.Int("n", 64);
        long? budget = args.Option("budget") is { } b ? ParseBytes(b) : null;
        var settings = Settings(args);
        var sampling = Sampling(args);
        bool json = args.Flag("json");
        args.EnsureAllUsed();
        args.EnsureNoPositional();
        sampling.Validate();

        using var session = EngineSession.Open(model, settings);
        var sampler = new Sampler(session.Model.Config.Vocab, sampling);
        var result = session.Generator.Generate(prompt, n, sampler, onToken: (_, piece) =>
        {
            Console.Write(piece);
            Console.Out.Flush();
        });
        Console.WriteLine();
        var experts = result.DecodeExperts;
        double io = experts.IoSeconds, stall = result.DecodeStallSeconds, compute = result.Steps.Sum(s => s.ComputeSeconds);
        long hits = experts.Hits, misses = experts.Misses, prefetchHits = experts.PrefetchHits, bytes = experts.BytesRead;

        if (json)
        {
            var summary = new JsonObject
            {
                ["tokens"] = result.Generated.Length,
                ["prompt_tokens"] = result.PromptTokens.Length,
                ["tokens_per_s"] = result.TokensPerSecond,
                ["io_mode"] = session.IoModeLabel,
                ["budget_bytes"] = budget,
                ["bytes_read"] = bytes,
                ["expert_hits"] = hits,
                ["expert_misses"] = misses,
                ["prefetch_hits"] = prefetchHits,
                ["io_seconds"] = io,
                ["compute_seconds"] = compute,
                ["stall_seconds"] = stall,
                ["peak_rss_bytes"] = EngineCellRunner.PeakRss(),
                // What peak RSS is held against: the non-expert weights the engine keeps in RAM, and the routed experts
                // it must never load wholesale under a budget.
                ["resident_weight_bytes"] = session.Model.ResidentBytes,
                ["routed_expert_bytes"] = session.Model.Experts.TotalBytes,
            };
            Console.WriteLine(summary.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
        }
        else
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{result.Generated.Length} tokens, {result.TokensPerSecond:F2} tokens/s ({session.IoModeLabel}); prompt {result.PromptTokens.Length} tokens in {result.PromptSeconds:F2} s; " +
                $"experts: {hits} hits, {misses} misses, {prefetchHits} prefetched, {bytes / 1e6:F1} MB read"));
        }

        return 0;
    }

    /// <summary>The engine options generate, trace record and calibrate --check share (--budget, --io, strategies, --threads).</summary>
    internal static EngineSettings Settings(CliArgs args) => new()
    {
        BudgetBytes = args.Option("budget") is { } b ? ParseBytes(b) : null,
        IoMode = args.Option("io") ?? "direct",
        Cache = args.Option("cache") ?? "lru",
        Prefetch = args.Option("prefetch") ?? "none",
        Routing = args.Option("routing") ?? "unchanged",
        Precision = args.Option("precision") ?? "native",
        Io = args.Option("io-scheduler") ?? "fifo",
        Threads = args.Int("threads", 0),
        Profile = args.Option("profile-trace") is { } trace ? MoeLab.Harness.Traces.TraceFiles.Load(trace) : null,
    };

    /// <summary>The sampling options (--temp, --top-k, --top-p, --seed).</summary>
    internal static SamplerOptions Sampling(CliArgs args) => new()
    {
        Temperature = (float)args.Double("temp", 0),
        TopK = args.Int("top-k", 0),
        TopP = (float)args.Double("top-p", 1),
        Seed = (ulong)args.Int("seed", 42),
    };

    internal static long ParseBytes(string text) =>
        MoeLab.Harness.Experiments.ByteSize.TryParse(text, out long b) ? b : throw new CliUsageException($"'{text}' is not a size (examples: 512MiB, 2GB, 1073741824B)");
}
