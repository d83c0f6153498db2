using System.Globalization;
using System.Text.Json;
using MoeLab.Engine.Telemetry;
using MoeLab.Harness.Simulation;
using MoeLab.Harness.Traces;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab trace record|import|export|synth|stats</c>: routing-trace recording, conversion, generation and statistics.</summary>
public sealed class TraceCommand : ICliCommand
{
    public string Name => "trace";

    public string Summary => "record (from the engine), import, export (incl. libCacheSim oracleGeneral), synthesize and summarize routing traces";

    public string Usage =>
        "usage: moelab trace record --model F.gguf (--prompt \"...\" ... | --prompts FILE) [-n 64] --out OUT.mltrace [--next-gate]\n" +
        "                              [--budget 512MiB --io direct|buffered --cache lru --prefetch none --routing unchanged --io-scheduler fifo]\n" +
        "                              [--temp 0 --top-k 0 --top-p 1 --seed 42 --threads N] [--half-weights] [--no-csv]\n" +
        "       moelab trace import IN [--format lines|jsonl|csv|moelab|oracle-general|oracle-general-csv] [--layers L] [--experts E] [--model NAME] --out OUT.mltrace [--half-weights]\n" +
        "       moelab trace export IN [--format F] [--layers L] --to moelab|csv|jsonl|lines|oracle-general|oracle-general-csv --out OUT\n" +
        "                              [--skip-tokens N] [--unit experts|bytes --model-preset NAME --expert-type Q4_K]\n" +
        "       moelab trace synth --out OUT [--model-preset NAME | --layers 32 --experts 64 --k 4] [--tokens 1000] [--zipf 0.8]\n" +
        "                              [--reuse 0.3] [--cross-layer 0.2] [--seed 42] [--no-weights]\n" +
        "       moelab trace stats IN [--format F] [--layers L] [--skip-tokens N] [--json]\n" +
        "record writes OUT.mltrace and its CSV form OUT.csv (every forward pass: prompt and generated tokens; header 'prompts'\n" +
        "= first:prompt_tokens:generated per prompt); --next-gate adds OUT.nextgate.mltrace/.csv, layer l+1's router on the\n" +
        "hidden state entering layer l. --prompts FILE: one prompt per line.\n" +
        "oracle-general: libCacheSim's 24-byte records (obj_id = layer*experts + expert; obj_size 1 per expert, or its bytes\n" +
        "with --unit bytes); oracle-general-csv: the same as clock_time,obj_id,obj_size,next_access_vtime lines.";

    public int Run(CliArgs args)
    {
        if (args.Positional.Count == 0) throw new CliUsageException("which action: record, import, export, synth or stats?");
        string action = args.Positional[0];
        return action switch
        {
            "record" => Record(args),
            "import" => Import(args),
            "export" => Export(args),
            "synth" => Synth(args),
            "stats" => Stats(args),
            _ => throw new CliUsageException($"unknown trace action '{action}'; use record, import, export, synth or stats"),
        };
    }

    private static string Input(CliArgs args) =>
        args.Positional.Count >= 2 ? args.Positional[1] : throw new CliUsageException("give the input trace file");

    private static RoutingTrace Load(CliArgs args, string path)
    {
        string? format = args.Option("format");
        int layers = args.Int("layers", 0), experts = args.Int("experts", 0);
        return TraceFiles.Load(path, format, layers > 0 ? layers : null, experts > 0 ? experts : null);
    }

    private static int Record(CliArgs args)
    {
        string model = args.Required("model");
        var prompts = new List<string>(args.Options("prompt"));
        if (args.Option("prompts") is { } promptFile)
        {
            if (!File.Exists(promptFile)) throw new CliUsageException($"--prompts: file '{promptFile}' does not exist");
            prompts.AddRange(File.ReadAllLines(promptFile).Where(l => l.Length > 0));
        }

        if (prompts.Count == 0) throw new CliUsageException("give --prompt \"...\" (repeatable) or --prompts FILE");
        string output = args.Required("out");
        var settings = GenerateCommand.Settings(args);
        var sampling = GenerateCommand.Sampling(args);
        int n = args.Int("n", 64);
        bool nextGate = args.Flag("next-gate");
        bool half = args.Flag("half-weights");
        bool csv = !args.Flag("no-csv");
        args.EnsureAllUsed();
        if (args.Positional.Count > 1) throw new CliUsageException($"unexpected argument '{args.Positional[1]}'");
        if (n < 0) throw new CliUsageException("-n must not be negative");
        sampling.Validate();

        var r = TraceRecording.Record(new TraceRecordOptions { ModelPath = model, Settings = settings, Prompts = prompts, Tokens = n, Sampling = sampling, NextGate = nextGate });
        string stem = Path.ChangeExtension(output, null);
        MoelabTraceFormat.Write(r.Trace, output, half);
        if (csv) TraceCsvFormat.Write(r.Trace, stem + ".csv");
        if (r.NextGate is { } ng)
        {
            MoelabTraceFormat.Write(ng, stem + ".nextgate.mltrace", half);
            if (csv) TraceCsvFormat.Write(ng, stem + ".nextgate.csv");
        }

        long hits = 0, misses = 0, bytes = 0;
        double seconds = 0;
        foreach (var s in r.DecodeSteps)
        {
            hits += s.Experts.Hits + s.Experts.PrefetchHits;
            misses += s.Experts.Misses;
            bytes += s.Experts.BytesRead;
            seconds += s.WallSeconds;
        }

        int decoded = r.Prompts.Sum(p => p.Generation.Generated.Length);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{output}: {r.Trace.Tokens} tokens ({decoded} generated) × {r.Trace.Layers} layers, {r.Trace.Requests} requests, {r.Trace.ExpertsPerLayer} experts per layer{(csv ? $"; {stem}.csv" : "")}{(r.NextGate is null ? "" : $"; next-gate guesses in {stem}.nextgate.mltrace")}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"engine ({r.IoModeLabel}): {(seconds > 0 ? decoded / seconds : 0):F2} tokens/s decode, hit rate {(hits + misses > 0 ? hits / (double)(hits + misses) : 1):P1}, {bytes / 1e6:F1} MB read while decoding"));
        return 0;
    }

    private static int Import(CliArgs args)
    {
        string input = Input(args);
        var trace = Load(args, input);
        string? model = args.Option("model");
        string output = args.Required("out");
        bool half = args.Flag("half-weights");
        args.EnsureAllUsed();
        if (model is not null) trace = WithHeader(trace, "model", model);
        MoelabTraceFormat.Write(trace, output, half);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{output}: {trace.Tokens} tokens × {trace.Layers} layers, {trace.Requests} requests, {trace.ExpertsPerLayer} experts per layer"));
        return 0;
    }

    private static int Export(CliArgs args)
    {
        string input = Input(args);
        var trace = Load(args, input);
        string to = args.Required("to");
        string output = args.Required("out");
        int skip = args.Int("skip-tokens", 0);
        string unit = args.Option("unit") ?? "experts";
        string? preset = args.Option("model-preset");
        string expertType = args.Option("expert-type") ?? "Q4_K";
        args.EnsureAllUsed();
        switch (to)
        {
            case "oracle-general" or "oracle-general-csv":
                uint size = 1;
                if (unit == "bytes")
                {
                    var p = preset is null ? SimulationSetup.PresetOf(trace) ?? throw new CliUsageException("--unit bytes needs --model-preset") : SimulationSetup.FindPreset(preset);
                    long bytes = p.ExpertBytes(SimulationSetup.ParseType(expertType, "expert-type"));
                    if (bytes > uint.MaxValue) throw new CliUsageException($"an expert of {bytes} bytes does not fit oracleGeneral's uint32 obj_size");
                    size = (uint)bytes;
                }
                else if (unit != "experts")
                {
                    throw new CliUsageException($"--unit: '{unit}' is not experts or bytes");
                }

                if (to == "oracle-general")
                {
                    using var s = new FileStream(output, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
                    OracleGeneralExport.WriteBinary(trace, s, size, skip);
                }
                else
                {
                    using var w = new StreamWriter(output);
                    OracleGeneralExport.WriteCsv(trace, w, size, skip);
                }

                break;
            case "moelab" or "csv" or "jsonl" or "lines":
                if (skip > 0) throw new CliUsageException("--skip-tokens applies to oracle-general exports; other formats keep the whole trace");
                TraceFiles.Save(trace, output, to);
                break;
            default:
                throw new CliUsageException($"--to: '{to}' is not one of moelab, csv, jsonl, lines, oracle-general, oracle-general-csv");
        }

        Console.WriteLine($"{output}: written ({to})");
        return 0;
    }

    private static int Synth(CliArgs args)
    {
        string output = args.Required("out");
        string? presetName = args.Option("model-preset");
        var preset = presetName is null ? null : SimulationSetup.FindPreset(presetName);
        var d = new SyntheticTraceOptions();
        var o = new SyntheticTraceOptions
        {
            Layers = args.Int("layers", preset?.MoeLayerCount ?? d.Layers),
            Experts = args.Int("experts", preset?.Experts ?? d.Experts),
            ExpertsPerToken = args.Int("k", preset?.ExpertsUsed ?? d.ExpertsPerToken),
            Tokens = args.Int("tokens", d.Tokens),
            ZipfExponent = args.Double("zipf", d.ZipfExponent),
            ReuseProbability = args.Double("reuse", d.ReuseProbability),
            CrossLayerCorrelation = args.Double("cross-layer", d.CrossLayerCorrelation),
            Seed = args.Int("seed", d.Seed),
            Weights = !args.Flag("no-weights"),
            Model = preset?.Name,
        };
        bool half = args.Flag("half-weights");
        args.EnsureAllUsed();
        var trace = SyntheticTrace.Generate(o);
        TraceFiles.Save(trace, output, halfWeights: half);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{output}: {trace.Tokens} tokens × {trace.Layers} layers × k {o.ExpertsPerToken} of {o.Experts} experts ({trace.Requests} requests)"));
        return 0;
    }

    private static int Stats(CliArgs args)
    {
        string input = Input(args);
        var trace = Load(args, input);
        int skip = args.Int("skip-tokens", 0);
        bool json = args.Flag("json");
        args.EnsureAllUsed();
        var s = TraceStats.Of(trace, skip);
        if (json)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartObject();
                w.WriteNumber("layers", s.Layers);
                w.WriteNumber("experts_per_layer", s.ExpertsPerLayer);
                w.WriteNumber("tokens", s.Tokens);
                w.WriteNumber("requests", s.Requests);
                w.WriteNumber("distinct_experts", s.DistinctExperts);
                w.WriteNumber("mean_experts_per_step", s.MeanExpertsPerStep);
                w.WriteNumber("top_10_percent_share", s.TopTenPercentShare);
                w.WriteNumber("token_reuse", s.TokenReuse);
                w.WriteNumber("mean_layer_entropy_bits", s.MeanLayerEntropyBits);
                w.WriteStartObject("header");
                foreach (var (k, v) in trace.Header.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteString(k, v);
                w.WriteEndObject();
                w.WriteEndObject();
            }

            Console.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
        }
        else
        {
            var inv = CultureInfo.InvariantCulture;
            Console.WriteLine(string.Create(inv, $"{input}: {s.Tokens} tokens × {s.Layers} layers, {s.Requests} requests, {s.DistinctExperts} of {s.Layers * s.ExpertsPerLayer} experts used"));
            Console.WriteLine(string.Create(inv, $"mean experts per step {s.MeanExpertsPerStep:F2}; top 10% of experts take {s.TopTenPercentShare:P1} of requests"));
            Console.WriteLine(string.Create(inv, $"token-to-token reuse {s.TokenReuse:P1}; mean per-layer routing entropy {s.MeanLayerEntropyBits:F2} bits (uniform: {Math.Log2(s.ExpertsPerLayer):F2})"));
            foreach (var (k, v) in trace.Header.OrderBy(p => p.Key, StringComparer.Ordinal)) Console.WriteLine($"  {k} = {v}");
        }

        return 0;
    }

    private static RoutingTrace WithHeader(RoutingTrace t, string key, string value)
    {
        var header = t.Header.ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
        header[key] = value;
        return new RoutingTrace(t.Layers, t.ExpertsPerLayer, t.StepStarts.ToArray(), t.AllExperts.ToArray(), t.HasWeights ? t.AllWeights.ToArray() : null, header);
    }
}
