using MoeLab.Harness.Simulation;
using MoeLab.Harness.Traces;
using MoeLab.Strategies;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab sim</c>: replays a routing trace through cache/prefetch strategies and a device cost model.</summary>
public sealed class SimCommand : ICliCommand
{
    public string Name => "sim";

    public string Summary => "replay a routing trace through strategies and predict hit rate, bytes and tokens/s on a device";

    public string Usage =>
        "usage: moelab sim --trace T [--trace-format moelab|csv|jsonl|lines] [--layers L --experts E] [--skip-tokens N] [--warmup-tokens W]\n" +
        "                  --cache NAME[:k=v,...] --capacity C[,C2,...|auto] [--unit experts|bytes] [--scope global|per-layer]\n" +
        "                  [--prefetch NAME[:k=v,...]] [--profile P] [--model-preset NAME] [--expert-type Q4_K] [--dense-type Q4_K]\n" +
        "                  [--page-cache] [--block-kib K] [--queue-depth Q] [--sequential] [--json]\n" +
        "--skip-tokens drops tokens (a prefill block); --warmup-tokens replays tokens to fill the cache without counting them.\n" +
        "Capacity counts experts (unit experts) or bytes (unit bytes: 8GiB, 512MiB); 'auto' = the profile's RAM for the model\n" +
        "minus the dense weights. A list gives a hit-rate curve (one replay per capacity, in parallel).\n" +
        "--page-cache: the OS page cache is the only cache (mmap'd weights); dense weights compete with experts in it.\n" +
        "Times need --profile (experiments/devices/P.yaml) and a model preset (--model-preset, or the trace's 'model' header).";

    public int Run(CliArgs args)
    {
        string tracePath = args.Required("trace");
        string? format = args.Option("trace-format");
        int layers = args.Int("layers", 0), experts = args.Int("experts", 0);
        int skip = args.Int("skip-tokens", 0);
        int warmup = args.Int("warmup-tokens", 0);
        string cache = args.Option("cache") ?? "lru";
        string capacity = args.Required("capacity");
        string unit = args.Option("unit") ?? "experts";
        string scope = args.Option("scope") ?? "global";
        string? prefetch = args.Option("prefetch");
        string? profile = args.Option("profile");
        string? preset = args.Option("model-preset");
        string expertType = args.Option("expert-type") ?? "Q4_K";
        string? denseType = args.Option("dense-type");
        bool pageCache = args.Flag("page-cache");
        int blockKib = args.Int("block-kib", 0), queueDepth = args.Int("queue-depth", 0);
        bool sequential = args.Flag("sequential");
        bool json = args.Flag("json");
        args.EnsureAllUsed();
        if (args.Positional.Count > 0) throw new CliUsageException($"unexpected argument '{args.Positional[0]}'");
        if (skip < 0) throw new CliUsageException("--skip-tokens must not be negative");

        var trace = TraceFiles.Load(tracePath, format, layers > 0 ? layers : null, experts > 0 ? experts : null);
        var et = SimulationSetup.ParseType(expertType, "expert-type");
        var setup = new SimulationSetup
        {
            Trace = trace,
            SkipTokens = skip,
            WarmupTokens = warmup,
            Preset = preset is null ? SimulationSetup.PresetOf(trace) : SimulationSetup.FindPreset(preset),
            ExpertType = et,
            DenseType = denseType is null ? et : SimulationSetup.ParseType(denseType, "dense-type"),
            Profile = profile is null ? null : DeviceProfile.Resolve(profile),
            Cache = StrategySpec.Parse(cache),
            Prefetch = prefetch is null ? null : StrategySpec.Parse(prefetch),
            Unit = SimulationSetup.ParseUnit(unit),
            Scope = SimulationSetup.ParseScope(scope),
            PageCache = pageCache,
            BlockBytes = blockKib > 0 ? blockKib * 1024L : null,
            QueueDepth = queueDepth > 0 ? queueDepth : null,
        };
        setup.CheckShape();
        var capacities = setup.Capacities(capacity);
        SimulationResult[] results;
        try
        {
            results = Simulator.Curve(setup.Options(), capacities, parallel: !sequential);
        }
        catch (StrategyException e)
        {
            throw new CliUsageException(e.Message);
        }
        catch (AggregateException e) when (e.InnerException is StrategyException se)
        {
            throw new CliUsageException(se.Message);
        }

        if (setup.Cost?.ReadSizeNote() is { } note) Console.Error.WriteLine("note: " + note);
        Console.Write(json ? SimulationReport.Json(setup, results) + "\n" : SimulationReport.Table(results));
        return 0;
    }
}
