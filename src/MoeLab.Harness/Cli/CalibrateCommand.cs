using System.Globalization;
using MoeLab.DeviceAgent;
using MoeLab.Harness.Simulation;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab calibrate</c>: measures this machine and writes experiments/devices/host.yaml for the simulator.</summary>
public sealed class CalibrateCommand : ICliCommand
{
    public string Name => "calibrate";

    public string Summary => "probe this disk and CPU as calibrate --check does (a model's expert slices O_DIRECT in the engine's bursts, its decode step) and RAM; write a device profile";

    public string Usage =>
        "usage: moelab calibrate [--out experiments/devices/host.yaml] [--model F.gguf|synth:PRESET:layers=N,quant=Q] [--io-scheduler fifo]\n" +
        "                        [--threads N] [--read-chunk 256KiB] [--probe-seconds 1] [--probes 3] [--block-sizes 128,256,...,8192|none] [--fio]\n" +
        "Measures with the probe --check takes around its run, so a stored profile and the probes differ only in when they\n" +
        "were taken: the model's own expert slices read O_DIRECT at depths 1, 2, … up to the I/O scheduler's in bursts of one\n" +
        "layer's reads separated by its compute time, a region sweep for a storage cache below the device, the engine's decode\n" +
        "step for compute; then a block-size sweep (--block-sizes, KiB; default 128 … 8192 in powers of two) of O_DIRECT reads of\n" +
        "the file's expert region in the same bursts at every depth, so `moelab sim` can charge models whose slices are another\n" +
        "size (it interpolates latency linearly in size between measured points and clamps outside them). --model defaults to " + DefaultModel + " (written once into models/; it must be on\n" +
        "the disk to measure). --fio also runs fio randread (libaio, direct=1) over the model file at its slice size × the\n" +
        "depth and records it as a cross-check. --probes N takes the whole probe N times back to back and stores their mean\n" +
        "(one probe's compute and read-slowdown figures spread ±15% and more on a shared VM).\n" +
        "       moelab calibrate --check --model F.gguf|synth:PRESET:layers=N,quant=Q --budget 25%|512MiB [--profile host]\n" +
        "                        [--cache lru] [--prefetch none] [--io-scheduler fifo] [--prompt \"...\" ...] [-n 32] [--threads N] [--read-chunk 256KiB]\n" +
        "                        [--probe both|before|after|none] [--probe-seconds 0.6] [--write-profile F] [--repeat N] [--segment-tokens 0] [--json]\n" +
        "--check runs the engine under the budget (O_DIRECT reads), records its routing, replays it through the simulator with\n" +
        "the file's shape, and prints measured vs predicted tokens/s (error), hit ratio and bytes read. The disk and compute\n" +
        "figures come from probes right before and after the run (the model's own expert slices read O_DIRECT at the engine's\n" +
        "depths, its decode step, the sampler), averaged; --probe none uses the stored profile's. The run's own\n" +
        "timings never enter the prediction. --write-profile saves the (last) probes' profile for `moelab sim --profile F`;\n" +
        "--repeat runs the whole check N times back to back and prints each error and their spread. With a probe before the run,\n" +
        "--segment-tokens N pauses the engine every N generated tokens for a disk-only probe and predicts each segment with\n" +
        "the probes bracketing it (default 0: the before/after probes for the whole run, also printed with segments).\n" +
        "A budget in % is of the file's routed expert bytes. Synthesized models are written once into models/.";

    /// <summary>A slice of the model the checks run (same expert and slice sizes), small enough to synthesize in seconds.</summary>
    public const string DefaultModel = "synth:qwen3-30b-a3b:layers=4,quant=Q4_K";

    public int Run(CliArgs args)
    {
        if (args.Flag("check")) return Check(args);
        string? outPath = args.Option("out");
        string model = new MoeLab.Harness.Runs.LocalTarget().ResolveModel(args.Option("model") ?? DefaultModel);
        var settings = new MoeLab.DeviceAgent.Runs.EngineSettings
        {
            Io = args.Option("io-scheduler") ?? "fifo",
            Threads = args.Int("threads", 0),
            ReadChunkBytes = args.Option("read-chunk") is { } chunk ? GenerateCommand.ParseBytes(chunk) : 0,
        };
        double seconds = args.Double("probe-seconds", 1.0);
        int probes = args.Int("probes", 3);
        var sweep = BlockSizes(args.Option("block-sizes"));
        bool fio = args.Flag("fio");
        args.EnsureAllUsed();
        args.EnsureNoPositional();
        if (seconds <= 0) throw new CliUsageException("--probe-seconds must be positive");
        if (probes < 1) throw new CliUsageException("--probes must be at least 1");

        outPath ??= Path.Combine(DeviceProfile.DevicesDirectory() ?? Path.Combine("experiments", "devices"), "host.yaml");
        int depth = CalibrationCheck.QueueDepthOf(settings);
        var profile = Calibration.Run(new Calibration.Options
        {
            ModelPath = model, QueueDepth = depth, Threads = settings.Threads, SecondsPerPoint = seconds, ReadChunkBytes = settings.ReadChunkBytes, SweepBlockKib = sweep, Probes = probes, Log = Console.WriteLine,
        });
        if (fio) CrossCheckWithFio(profile, model, depth, CalibrationProbe.ReadBlockBytes(model, settings.ReadChunkBytes));
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        File.WriteAllText(outPath, "# Written by `moelab calibrate`; rerun it to refresh. Figures are measurements of this machine.\n" + profile.ToYaml());
        Console.WriteLine($"wrote {outPath}");
        return 0;
    }

    private static int Check(CliArgs args)
    {
        string model = new MoeLab.Harness.Runs.LocalTarget().ResolveModel(args.Required("model"));
        string budgetText = args.Required("budget");
        var profile = DeviceProfile.Resolve(args.Option("profile") ?? "host");
        var prompts = args.Options("prompt").ToList();
        if (prompts.Count == 0) prompts.Add("The expert cache keeps the hot experts in RAM while the rest stream from the SSD");
        int n = args.Int("n", 32);
        bool json = args.Flag("json");
        var settings = new MoeLab.DeviceAgent.Runs.EngineSettings
        {
            BudgetBytes = Budget(budgetText, model),
            IoMode = args.Option("io") ?? "direct",
            Cache = args.Option("cache") ?? "lru",
            Prefetch = args.Option("prefetch") ?? "none",
            Io = args.Option("io-scheduler") ?? "fifo",
            Threads = args.Int("threads", 0),
            ReadChunkBytes = args.Option("read-chunk") is { } chunk ? GenerateCommand.ParseBytes(chunk) : 0,
        };
        var probe = (args.Option("probe") ?? "both") switch
        {
            "both" => ProbeTiming.Both,
            "before" => ProbeTiming.Before,
            "after" => ProbeTiming.After,
            "none" => ProbeTiming.None,
            var other => throw new CliUsageException($"--probe: '{other}' is not one of both, before, after, none"),
        };
        double probeSeconds = args.Double("probe-seconds", 0.6);
        string? writeProfile = args.Option("write-profile");
        int repeat = args.Int("repeat", 1);
        int segment = args.Int("segment-tokens", 0);
        args.EnsureAllUsed();
        args.EnsureNoPositional();
        if (probeSeconds <= 0) throw new CliUsageException("--probe-seconds must be positive");
        if (repeat < 1) throw new CliUsageException("--repeat must be at least 1");
        if (segment < 0) throw new CliUsageException("--segment-tokens must be 0 (none) or positive");
        var options = new CalibrationCheckOptions { ModelPath = model, Settings = settings, Prompts = prompts, Tokens = n, Profile = profile, Probe = probe, ProbeSecondsPerPoint = probeSeconds, SegmentTokens = segment };
        var errors = new List<double>();
        var unsegmented = new List<double>();
        var spreads = new List<double>();
        bool countsMatch = true;
        for (int i = 0; i < repeat; i++)
        {
            if (repeat > 1 && !json) Console.WriteLine($"-- run {i + 1} of {repeat}");
            var r = CalibrationCheck.Run(options);
            countsMatch &= r.CountsMatch;
            errors.Add(r.TokensPerSecondError);
            if (r.PredictedWithoutSegments is { } whole) unsegmented.Add(r.Error(whole));
            spreads.Add(r.LargestBracketSpread);
            Print(r, model, profile, settings, json, i == repeat - 1 ? writeProfile : null);
        }

        if (repeat > 1 && !json)
        {
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine("tokens/s error per run: " + string.Join(", ", errors.Select(e => e.ToString("+0.0%;-0.0%", inv))) +
                string.Create(inv, $"; mean |error| {errors.Average(Math.Abs):0.0%}, largest {errors.Max(Math.Abs):0.0%}, {errors.Count(e => Math.Abs(e) <= 0.15)} of {repeat} within ±15%"));
            if (unsegmented.Count > 0)
            {
                Console.WriteLine("  without segments (before/after probes only): " + string.Join(", ", unsegmented.Select(e => e.ToString("+0.0%;-0.0%", inv))) +
                    string.Create(inv, $"; {unsegmented.Count(e => Math.Abs(e) <= 0.15)} of {repeat} within ±15%"));
                Console.WriteLine("  largest spread of a segment's bracketing probes per run: " + string.Join(", ", spreads.Select(x => x.ToString("0%", inv))) +
                    (spreads.Any(x => x > 0.15) ? " (above 15%: the disk moved by more than the tolerance between two probes a few seconds apart)" : ""));
            }
        }

        return countsMatch ? 0 : 2;
    }

    private static void Print(CalibrationCheckResult r, string model, DeviceProfile profile, MoeLab.DeviceAgent.Runs.EngineSettings settings, bool json, string? writeProfile)
    {
        if (writeProfile is not null)
        {
            File.WriteAllText(writeProfile, "# Written by `moelab calibrate --check`: disk and compute probed around an engine run.\n" + r.Profile.ToYaml());
        }

        if (json)
        {
            var o = new System.Text.Json.Nodes.JsonObject
            {
                ["model"] = Path.GetFileName(model),
                ["profile"] = profile.Name,
                ["budget_bytes"] = settings.BudgetBytes,
                ["cache_capacity_bytes"] = r.CacheCapacityBytes,
                ["cache"] = settings.Cache,
                ["prefetch"] = settings.Prefetch,
                ["io_mode"] = r.IoMode,
                ["tokens"] = r.Measured.Tokens,
                ["measured_tokens_per_s"] = r.Measured.TokensPerSecond,
                ["predicted_tokens_per_s"] = r.Predicted.TokensPerSecond,
                ["tokens_per_s_error"] = r.TokensPerSecondError,
                ["predicted_from"] = r.Probes.Count > 0 ? "trace + probes around the run" : $"trace + profile {profile.Name}",
                ["stored_profile_predicted_tokens_per_s"] = r.PredictedWithStoredProfile?.TokensPerSecond,
                ["resume_after_stall_us"] = r.Probes.Count > 0 ? r.Probes.Average(f => f.ResumeAfterStallUs) : null,
                ["with_resume_predicted_tokens_per_s"] = r.PredictedWithResume?.TokensPerSecond,
                ["read_slowdown_under_compute"] = r.Profile.Storage.ReadSlowdownUnderCompute,
                ["prefetch_reads_at_idle_rate_predicted_tokens_per_s"] = r.PredictedWithoutReadSlowdown?.TokensPerSecond,
                ["measured_compute_s_per_token"] = r.Measured.ComputeSeconds / Math.Max(1, r.Measured.Tokens),
                ["predicted_compute_s_per_token"] = r.Predicted.ComputeSeconds / Math.Max(1, r.Predicted.Tokens),
                ["measured_stall_s_per_token"] = r.Measured.StallSeconds / Math.Max(1, r.Measured.Tokens),
                ["predicted_stall_s_per_token"] = r.Predicted.StallSeconds / Math.Max(1, r.Predicted.Tokens),
                ["measured_disk_busy_s_per_token"] = r.Measured.IoBusySeconds / Math.Max(1, r.Measured.Tokens),
                ["predicted_disk_busy_s_per_token"] = r.Predicted.IoBusySeconds / Math.Max(1, r.Predicted.Tokens),
                ["measured_hit_ratio"] = r.Measured.HitRatio,
                ["predicted_hit_ratio"] = r.Predicted.HitRatio,
                ["measured_bytes_read"] = r.Measured.BytesRead,
                ["predicted_bytes_read"] = r.Predicted.BytesRead,
                ["measured_prefetch_hits"] = r.Measured.PrefetchHits,
                ["predicted_prefetch_hits"] = r.Predicted.PrefetchHits,
                ["measured_prefetch_cancelled"] = r.Measured.PrefetchCancelled,
                ["measured_run_bytes_read"] = r.MeasuredRunBytes,
                ["predicted_run_bytes_read"] = r.PredictedRunBytes,
                ["counts_match"] = r.CountsMatch,
                ["segment_tokens"] = r.Segments.Count > 0 ? r.Options.SegmentTokens : 0,
                ["unsegmented_predicted_tokens_per_s"] = r.PredictedWithoutSegments?.TokensPerSecond,
                ["unsegmented_tokens_per_s_error"] = r.PredictedWithoutSegments is { } w ? r.Error(w) : null,
                ["largest_bracket_spread"] = r.LargestBracketSpread,
                ["segment_errors"] = new System.Text.Json.Nodes.JsonArray([.. r.Segments.Select(g => (System.Text.Json.Nodes.JsonNode?)g.Error)]),
                ["load_average"] = r.LoadAverage,
            };
            Console.WriteLine(o.ToJsonString());
        }
        else
        {
            Console.Write(CalibrationCheck.Table(r));
        }
    }

    /// <summary>A size, or a percentage of the file's routed expert bytes.</summary>
    private static long Budget(string text, string model)
    {
        if (text.EndsWith('%') && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double pct) && pct > 0)
        {
            long experts = MoeLab.Engine.Gguf.GgufFile.Open(model).Tensors.Where(MoeLab.Engine.Model.ExpertTensors.IsRoutedExpert).Sum(t => t.ByteSize);
            return (long)(experts * pct / 100);
        }

        return GenerateCommand.ParseBytes(text);
    }

    /// <summary>--block-sizes: KiB sizes as a comma list, "none" for the slice size alone, or the default sweep.</summary>
    private static IReadOnlyList<int> BlockSizes(string? text)
    {
        if (text is null) return Calibration.DefaultSweepBlockKib;
        if (text == "none") return [];
        var sizes = new List<int>();
        foreach (string part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int kib) || kib <= 0 || kib % 4 != 0)
            {
                throw new CliUsageException($"--block-sizes: '{part}' is not a size in KiB that is a positive multiple of 4 (O_DIRECT reads are 4 KiB-aligned)");
            }

            sizes.Add(kib);
        }

        return sizes;
    }

    private static void CrossCheckWithFio(DeviceProfile profile, string model, int depth, long block)
    {
        // At the size the profile's reads were probed at (the model's slices), read-only over the model file itself.
        try
        {
            var r = MoeLab.Harness.Peers.Fio.RandomRead(model, block, depth, seconds: 3, rampSeconds: 0);
            string note = string.Create(CultureInfo.InvariantCulture, $"fio randread {block / 1024} KiB libaio iodepth={depth} direct=1 over {Path.GetFileName(model)}, sustained, buffers in {(r.HugePageBuffers ? "huge" : "4 KiB")} pages: {r.MegabytesPerSecond:F1} MB/s, mean completion latency {r.MeanLatencyMicroseconds:F1} µs");
            Console.WriteLine("  cross-check: " + note);
            profile.Sources.Add(new DeviceProfile.SourceNote { Figure = "storage.reads (cross-check, not used by the model)", Source = note });
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.Text.Json.JsonException or KeyNotFoundException)
        {
            Console.WriteLine($"  fio cross-check skipped: {e.Message}");
        }
    }
}
