using System.Security.Cryptography;
using MoeLab.Strategies;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace MoeLab.Harness.Experiments;

/// <summary>
/// Reads an experiment YAML file into a <see cref="RawExperiment"/>: YAML syntax, keys and scalar types, every problem
/// with file:line:column. Names and values are resolved afterwards by <see cref="ExperimentValidator"/>.
/// </summary>
public static class ExperimentReader
{
    public static IReadOnlyList<string> TopLevelKeys { get; } =
    [
        "name", "description", "model", "target", "prompts", "generate", "warmup", "repetitions", "seed", "threads",
        "sampling", "record_trace", "measure_quality", "trace", "agents", "matrix", "exclude", "baseline",
    ];

    /// <summary>Loads, reads and validates <paramref name="path"/>; throws <see cref="ExperimentException"/> listing every error.</summary>
    public static Experiment Load(string path)
    {
        if (!System.IO.File.Exists(path)) throw new FileNotFoundException($"{path}: no such experiment file", path);
        byte[] bytes = System.IO.File.ReadAllBytes(path);
        return Parse(path, bytes, Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    public static Experiment Parse(string file, byte[] bytes, string baseDirectory)
    {
        var errors = new List<ExperimentError>();
        var raw = Read(file, bytes, errors);
        if (raw is null) throw new ExperimentException(errors);
        var experiment = ExperimentValidator.Validate(raw, baseDirectory, errors);
        if (experiment is null || errors.Count > 0) throw new ExperimentException(errors);
        return experiment;
    }

    /// <summary>YAML → raw DTO; null (with errors) when the file is not even a YAML mapping.</summary>
    public static RawExperiment? Read(string file, byte[] bytes, List<ExperimentError> errors)
    {
        string text;
        try
        {
            text = new System.Text.UTF8Encoding(false, true).GetString(bytes);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            errors.Add(new ExperimentError(new SourceLocation(file, 1, 1), $"the file is not UTF-8 text (bad byte at offset {e.Index})"));
            return null;
        }

        // YAML forbids tabs in indentation; YamlDotNet reports them at the parent, so point at the tab itself.
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int indent = 0;
            while (indent < lines[i].Length && lines[i][indent] is ' ' or '\t') indent++;
            int tab = lines[i].IndexOf('\t');
            if (tab >= 0 && tab < indent && indent < lines[i].Length && lines[i][indent] != '#')
            {
                errors.Add(new ExperimentError(new SourceLocation(file, i + 1, tab + 1), "YAML syntax: a tab in indentation", "spaces"));
                return null;
            }
        }

        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException e)
        {
            // YamlDotNet's messages start with "(Line: …)"; the position goes first in ours instead.
            string message = e.Message.Contains("Duplicate key", StringComparison.Ordinal) ? "duplicate key (each key may appear once in a mapping)" : StripMark(e.Message);
            errors.Add(new ExperimentError(new SourceLocation(file, (int)e.Start.Line, (int)e.Start.Column), "YAML syntax: " + message));
            return null;
        }

        if (stream.Documents.Count == 0 || YamlNodes.IsNull(stream.Documents[0].RootNode))
        {
            errors.Add(new ExperimentError(new SourceLocation(file, 1, 1), "the file is empty", "an experiment (model:, target:, prompts:, matrix: …)"));
            return null;
        }

        if (stream.Documents.Count > 1)
        {
            var second = stream.Documents[1].RootNode;
            errors.Add(new ExperimentError(new SourceLocation(file, (int)second.Start.Line, (int)second.Start.Column), "more than one YAML document ('---'); an experiment file holds one"));
        }

        var y = new YamlNodes(file, errors);
        var root = stream.Documents[0].RootNode;
        var raw = new RawExperiment { File = file, Sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes)), At = y.At(root) };
        var top = y.Mapping(root, "the experiment", TopLevelKeys);
        if (top is null) return null;
        foreach (var (key, node) in top)
        {
            raw.Keys.Add(key);
            switch (key)
            {
                case "name": raw.Name = y.String(node, "name"); break;
                case "description": raw.Description = y.String(node, "description"); break;
                case "model": raw.Model = ReadModel(y, node); break;
                case "target": raw.Target = y.String(node, "target"); break;
                case "prompts": raw.Prompts = ReadPrompts(y, node); break;
                case "generate": raw.Generate = y.Int(node, "generate (tokens per repetition)", 1, 1_000_000); break;
                case "warmup": raw.Warmup = y.Int(node, "warmup (tokens)", 0, 1_000_000); break;
                case "repetitions": raw.Repetitions = y.Int(node, "repetitions", 1, 10_000); break;
                case "seed": raw.Seed = y.Long(node, "seed"); break;
                case "threads": raw.Threads = y.Int(node, "threads", 0, 4096); break;
                case "sampling": ReadSampling(y, node, raw); break;
                case "record_trace": raw.RecordTrace = y.Bool(node, "record_trace"); break;
                case "measure_quality": raw.MeasureQuality = y.Bool(node, "measure_quality"); break;
                case "trace": ReadTrace(y, node, raw); break;
                case "agents": ReadAgents(y, node, raw); break;
                case "matrix": ReadMatrix(y, node, raw); break;
                case "exclude": ReadExclusions(y, node, raw); break;
                case "baseline": ReadBaseline(y, node, raw); break;
            }
        }

        return raw;
    }

    private static string StripMark(string message)
    {
        // "(Line: 3, Col: 5, Idx: 20) - (Line: 3, Col: 6, Idx: 21): While scanning …" → "While scanning …"
        int colon = message.LastIndexOf("): ", StringComparison.Ordinal);
        return colon >= 0 ? message[(colon + 3)..] : message;
    }

    private static RawModel? ReadModel(YamlNodes y, YamlNode node)
    {
        if (node is YamlScalarNode) return y.String(node, "model") is { } p ? new RawModel(y.At(node), p, null, null, null) : null;
        var map = y.Mapping(node, "model", ["path", "synth", "preset"]);
        if (map is null) return null;
        if (map.Count != 1)
        {
            y.Error(node, "model needs exactly one of path, synth or preset", "path: FILE.gguf | synth: {preset, layers, quant} | preset: NAME");
            return null;
        }

        if (map.TryGetValue("path", out var path)) return new RawModel(y.At(node), y.String(path, "model.path"), null, null, null);
        if (map.TryGetValue("preset", out var preset)) return new RawModel(y.At(node), null, y.String(preset, "model.preset"), null, null);
        var synth = y.Mapping(map["synth"], "model.synth", ["preset", "layers", "quant"]);
        if (synth is null) return null;
        if (!synth.TryGetValue("preset", out var p2))
        {
            y.Error(map["synth"], "model.synth needs a preset", "preset: NAME (e.g. tiny-qwen3moe)");
            return null;
        }

        return new RawModel(y.At(node), null, y.String(p2, "model.synth.preset"),
            synth.TryGetValue("layers", out var l) ? y.Int(l, "model.synth.layers", 1, 1000) : null,
            synth.TryGetValue("quant", out var q) ? y.String(q, "model.synth.quant") : null);
    }

    private static RawPrompts? ReadPrompts(YamlNodes y, YamlNode node)
    {
        if (node is YamlScalarNode) return y.String(node, "prompts") is { } one ? new RawPrompts([one], null, null, null, null) : null;
        if (node is YamlSequenceNode seq) return new RawPrompts(seq.Children.Select(c => y.String(c, "a prompt")).OfType<Located<string>>().ToList(), null, null, null, null);
        var map = y.Mapping(node, "prompts", ["inline", "file", "dataset", "lines", "skip"]);
        if (map is null) return null;
        var inline = map.TryGetValue("inline", out var i) ? y.OneOrMany(i).Select(c => y.String(c, "a prompt")).OfType<Located<string>>().ToList() : [];
        return new RawPrompts(inline,
            map.TryGetValue("file", out var f) ? y.String(f, "prompts.file") : null,
            map.TryGetValue("dataset", out var d) ? y.String(d, "prompts.dataset") : null,
            map.TryGetValue("lines", out var n) ? y.Int(n, "prompts.lines", 1) : null,
            map.TryGetValue("skip", out var s) ? y.Int(s, "prompts.skip", 0) : null);
    }

    private static void ReadSampling(YamlNodes y, YamlNode node, RawExperiment raw)
    {
        var map = y.Mapping(node, "sampling", ["temperature", "top_k", "top_p"]);
        if (map is null) return;
        if (map.TryGetValue("temperature", out var t)) raw.Temperature = y.Double(t, "sampling.temperature", 0, 100);
        if (map.TryGetValue("top_k", out var k)) raw.TopK = y.Int(k, "sampling.top_k", 0);
        if (map.TryGetValue("top_p", out var p)) raw.TopP = y.Double(p, "sampling.top_p", 0, 1);
    }

    private static void ReadTrace(YamlNodes y, YamlNode node, RawExperiment raw)
    {
        var map = y.Mapping(node, "trace", ["path", "format"]);
        if (map is null) return;
        if (map.TryGetValue("path", out var p)) raw.TracePath = y.String(p, "trace.path");
        if (map.TryGetValue("format", out var f)) raw.TraceFormat = y.String(f, "trace.format");
    }

    private static void ReadAgents(YamlNodes y, YamlNode node, RawExperiment raw)
    {
        var map = y.Mapping(node, "agents", ["listen", "token_file", "lease_timeout_seconds", "timeout_minutes"]);
        if (map is null) return;
        if (map.TryGetValue("listen", out var l)) raw.AgentsListen = y.String(l, "agents.listen");
        if (map.TryGetValue("token_file", out var t)) raw.AgentsTokenFile = y.String(t, "agents.token_file");
        if (map.TryGetValue("lease_timeout_seconds", out var s)) raw.AgentsLeaseSeconds = y.Double(s, "agents.lease_timeout_seconds", 1, 3600);
        if (map.TryGetValue("timeout_minutes", out var m)) raw.AgentsTimeoutMinutes = y.Double(m, "agents.timeout_minutes", 0.1, 7 * 24 * 60);
    }

    private static void ReadMatrix(YamlNodes y, YamlNode node, RawExperiment raw)
    {
        var map = y.Mapping(node, "matrix", Axes.All);
        if (map is null) return;
        foreach (var (axis, valuesNode) in map)
        {
            var values = new List<RawAxisValue>();
            var items = y.OneOrMany(valuesNode);
            if (items.Count == 0) y.Error(valuesNode, $"matrix.{axis} is an empty list", "at least one value");
            foreach (var item in items)
            {
                bool strategy = Axes.KindOf(axis) is not null;
                if (!strategy)
                {
                    if (y.String(item, $"a matrix.{axis} value") is { } s) values.Add(new RawAxisValue(s.At, null, s));
                    continue;
                }

                if (ReadStrategy(y, item, $"a matrix.{axis} value") is { } rs) values.Add(new RawAxisValue(y.At(item), rs, null));
            }

            raw.Matrix[axis] = values;
        }
    }

    /// <summary>A strategy: <c>lru</c>, <c>lfu:decay=0.5</c>, or <c>{name: lfu, decay: 0.5}</c>.</summary>
    private static RawStrategy? ReadStrategy(YamlNodes y, YamlNode node, string what)
    {
        if (node is YamlScalarNode s && !YamlNodes.IsNull(s))
        {
            StrategySpec spec;
            try
            {
                spec = StrategySpec.Parse(s.Value!);
            }
            catch (StrategyException e)
            {
                y.Error(node, e.Message, "name or name:key=value,key=value");
                return null;
            }

            var at = y.At(node);
            return new RawStrategy(new Located<string>(spec.Name, at), spec.Parameters.Select(p => (new Located<string>(p.Key, at), new Located<string>(p.Value, at))).ToList());
        }

        if (node is not YamlMappingNode map)
        {
            y.Error(node, $"{what} has the wrong type", "a strategy name or {name: NAME, PARAMETER: VALUE, …}", YamlNodes.Describe(node));
            return null;
        }

        Located<string>? name = null;
        var parameters = new List<(Located<string>, Located<string>)>();
        foreach (var (k, v) in map.Children)
        {
            if (k is not YamlScalarNode { Value: { } key })
            {
                y.Error(k, $"a key in {what} is not a name", "a plain name", YamlNodes.Describe(k));
                continue;
            }

            if (key == "name")
            {
                name = y.String(v, $"{what}: name");
                continue;
            }

            if (v is not YamlScalarNode || YamlNodes.IsNull(v))
            {
                y.Error(v, $"parameter '{key}' has the wrong type", "a single value", YamlNodes.Describe(v));
                continue;
            }

            parameters.Add((new Located<string>(key, y.At(k)), new Located<string>(((YamlScalarNode)v).Value!, y.At(v))));
        }

        if (name is null)
        {
            y.Error(node, $"{what} has no name", "name: POLICY alongside its parameters");
            return null;
        }

        return new RawStrategy(name, parameters);
    }

    private static void ReadExclusions(YamlNodes y, YamlNode node, RawExperiment raw)
    {
        if (node is not YamlSequenceNode seq)
        {
            y.Error(node, "exclude has the wrong type", "a list of {axis: value, …} mappings", YamlNodes.Describe(node));
            return;
        }

        foreach (var item in seq.Children)
        {
            if (item is not YamlMappingNode map)
            {
                y.Error(item, "an exclusion has the wrong type", "a mapping such as {cache: belady, prefetch: next-gate}", YamlNodes.Describe(item));
                continue;
            }

            var match = new List<(Located<string>, List<Located<string>>)>();
            foreach (var (k, v) in map.Children)
            {
                if (y.String(k, "an exclusion's axis") is not { } axis) continue;
                if (!Axes.All.Contains(axis.Value))
                {
                    y.Error(k, $"unknown axis '{axis.Value}' in an exclusion", "one of " + string.Join(", ", Axes.All), null, StrategyCatalog.Nearest(axis.Value, Axes.All));
                    continue;
                }

                match.Add((axis, y.OneOrMany(v).Select(n => y.String(n, $"an exclusion's {axis.Value} value")).OfType<Located<string>>().ToList()));
            }

            raw.Exclude.Add((y.At(item), match));
        }
    }

    private static void ReadBaseline(YamlNodes y, YamlNode node, RawExperiment raw)
    {
        raw.BaselineAt = y.At(node);
        if (node is not YamlMappingNode map)
        {
            y.Error(node, "baseline has the wrong type", "a mapping of axis values naming one cell, e.g. {cache: lru, budget: all}", YamlNodes.Describe(node));
            return;
        }

        raw.Baseline = [];
        foreach (var (k, v) in map.Children)
        {
            if (y.String(k, "a baseline axis") is not { } axis) continue;
            if (!Axes.All.Contains(axis.Value))
            {
                y.Error(k, $"unknown axis '{axis.Value}' in baseline", "one of " + string.Join(", ", Axes.All), null, StrategyCatalog.Nearest(axis.Value, Axes.All));
                continue;
            }

            if (y.String(v, $"baseline {axis.Value}") is { } value) raw.Baseline.Add((axis, value));
        }
    }
}
