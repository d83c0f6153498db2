using System.Globalization;
using System.Text.RegularExpressions;
using MoeLab.Engine.Gguf;
using MoeLab.Strategies;

namespace MoeLab.Harness.Experiments;

/// <summary>
/// Raw experiment → immutable <see cref="Experiment"/>: resolves strategy names and parameters through the
/// <see cref="StrategyCatalog"/>, parses budgets, reads prompt files, checks the target, exclusions and baseline.
/// Every problem is recorded with its position; nothing runs until the list is empty.
/// </summary>
public static partial class ExperimentValidator
{
    public static IReadOnlyList<string> TargetKinds { get; } = ["local", "sim:PROFILE", "agents"];

    public static IReadOnlyList<string> TraceFormats { get; } = ["moelab", "jsonl", "lines"];

    public static Experiment? Validate(RawExperiment raw, string baseDirectory, List<ExperimentError> errors)
    {
        int before = errors.Count;
        void Error(SourceLocation at, string message, string? expected = null, string? found = null, string? suggestion = null) =>
            errors.Add(new ExperimentError(at, message, expected, found, suggestion));

        string name = raw.Name?.Value ?? Path.GetFileNameWithoutExtension(raw.File);
        if (!SafeName().IsMatch(name))
            Error(raw.Name?.At ?? raw.At, "the experiment name is used as a directory name", "letters, digits, '.', '_' or '-'", $"'{name}'");

        string? target = raw.Target?.Value;
        if (raw.Target is null && !raw.Keys.Contains("target")) Error(raw.At, "missing key 'target'", "target: local | sim:PROFILE | agents");
        else if (raw.Target is not null && target is not ("local" or "agents") && !(target!.StartsWith("sim:", StringComparison.Ordinal) && target.Length > 4))
            Error(raw.Target.At, $"unknown target '{target}'", string.Join(" | ", TargetKinds), null, StrategyCatalog.Nearest(target, ["local", "agents", "sim:"]));

        var model = ResolveModel(raw, target, baseDirectory, Error);
        var prompts = ResolvePrompts(raw, baseDirectory, Error);

        string? trace = null;
        if (raw.TracePath is { } tp)
        {
            trace = Path.GetFullPath(Path.Combine(baseDirectory, tp.Value));
            if (!File.Exists(trace)) Error(tp.At, $"trace file '{tp.Value}' does not exist", "a path relative to the experiment file", trace);
        }

        if (raw.TraceFormat is { } tf && !TraceFormats.Contains(tf.Value))
            Error(tf.At, $"unknown trace format '{tf.Value}'", string.Join(", ", TraceFormats), null, StrategyCatalog.Nearest(tf.Value, TraceFormats));
        if (target?.StartsWith("sim:", StringComparison.Ordinal) == true && raw.TracePath is null)
            Error(raw.Target!.At, "a sim: target replays a routing trace", "trace: {path: FILE, format: moelab|jsonl|lines}");

        var axes = new List<Axis>();
        foreach (string axis in Axes.All)
        {
            if (!raw.Matrix.TryGetValue(axis, out var values))
            {
                string d = Axes.DefaultOf(axis);
                axes.Add(new Axis(axis, [axis == Axes.Budget ? new AxisValue(d, Budget: BudgetSpec.All) : new AxisValue(d, Axes.KindOf(axis) is null ? null : StrategySpec.Of(d))]));
                continue;
            }

            var resolved = new List<AxisValue>();
            foreach (var v in values)
            {
                var value = ResolveAxisValue(axis, v, Error);
                if (value is null) continue;
                if (resolved.Any(r => r.Text == value.Text))
                {
                    Error(v.At, $"matrix.{axis} lists '{value.Text}' twice");
                    continue;
                }

                resolved.Add(value);
            }

            if (resolved.Count > 0) axes.Add(new Axis(axis, resolved));
        }

        var exclusions = new List<Exclusion>();
        if (axes.Count == Axes.All.Count)
        {
            foreach (var (at, match) in raw.Exclude)
            {
                var m = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
                foreach (var (axis, values) in match)
                {
                    var ax = axes.First(a => a.Name == axis.Value);
                    foreach (var v in values.Where(v => !ax.Values.Any(x => x.Matches(v.Value))))
                        Error(v.At, $"the exclusion names {axis.Value} '{v.Value}', which the matrix does not have", "one of " + string.Join(", ", ax.Values.Select(x => x.Text)), null, StrategyCatalog.Nearest(v.Value, ax.Values.Select(x => x.Text)));
                    m[axis.Value] = values.Select(v => v.Value).ToList();
                }

                if (m.Count == 0) Error(at, "an empty exclusion would remove every cell", "{axis: value, …}");
                exclusions.Add(new Exclusion(m, at));
            }
        }

        Dictionary<string, string>? baseline = null;
        if (raw.Baseline is { } b && axes.Count == Axes.All.Count)
        {
            baseline = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (axis, value) in b)
            {
                var ax = axes.First(a => a.Name == axis.Value);
                if (!ax.Values.Any(x => x.Matches(value.Value)))
                    Error(value.At, $"baseline {axis.Value} '{value.Value}' is not in the matrix", "one of " + string.Join(", ", ax.Values.Select(x => x.Text)), null, StrategyCatalog.Nearest(value.Value, ax.Values.Select(x => x.Text)));
                baseline[axis.Value] = value.Value;
            }
        }

        var agents = target == "agents"
            ? new AgentsOptions(raw.AgentsListen?.Value ?? "127.0.0.1:7878", raw.AgentsTokenFile is { } t ? Path.GetFullPath(Path.Combine(baseDirectory, t.Value)) : null,
                TimeSpan.FromSeconds(raw.AgentsLeaseSeconds?.Value ?? 30), TimeSpan.FromMinutes(raw.AgentsTimeoutMinutes?.Value ?? 60))
            : null;

        if (errors.Count > before || model is null || prompts is null || target is null) return null;
        var experiment = new Experiment
        {
            Name = name,
            Description = raw.Description?.Value,
            SourceFile = raw.File,
            SourceSha256 = raw.Sha256,
            Model = model,
            Target = target,
            Prompts = prompts,
            Generate = raw.Generate?.Value ?? 32,
            Warmup = raw.Warmup?.Value ?? 0,
            Repetitions = raw.Repetitions?.Value ?? 3,
            Seed = raw.Seed?.Value ?? 42,
            Threads = raw.Threads?.Value ?? 0,
            Temperature = raw.Temperature?.Value ?? 0,
            TopK = raw.TopK?.Value ?? 0,
            TopP = raw.TopP?.Value ?? 1.0,
            RecordTrace = raw.RecordTrace?.Value ?? false,
            MeasureQuality = raw.MeasureQuality?.Value ?? false,
            Trace = trace,
            TraceFormat = raw.TraceFormat?.Value ?? (trace is null ? null : "moelab"),
            Agents = agents,
            Axes = axes,
            Exclusions = exclusions,
            Baseline = baseline,
            BaselineAt = raw.BaselineAt,
        };

        int cells = Matrix.Combinations(experiment).Count();
        if (cells == 0) Error(raw.At, "the exclusions remove every cell of the matrix");
        if (baseline is not null)
        {
            int matching = Matrix.Combinations(experiment).Count(c => Matrix.IsBaseline(experiment, c));
            if (matching != 1)
                Error(raw.BaselineAt!.Value, $"baseline selects {matching} cells", "axis values that pick exactly one cell (name every swept axis)");
        }

        return errors.Count > before ? null : experiment;
    }

    private static ModelRef? ResolveModel(RawExperiment raw, string? target, string baseDirectory, Action<SourceLocation, string, string?, string?, string?> error)
    {
        if (raw.Model is not { } m)
        {
            if (raw.Keys.Contains("model")) return null;
            error(raw.At, "missing key 'model'", "model: FILE.gguf, or model: {synth: {preset: NAME, layers: N, quant: TYPE}}", null, null);
            return null;
        }

        if (m.Path is { } p)
        {
            // Agents resolve names inside their own model directory; everyone else reads a file here.
            if (target == "agents") return ModelRef.OfPath(p.Value);
            string full = Path.GetFullPath(Path.Combine(baseDirectory, p.Value));
            if (target == "local" && !File.Exists(full)) error(p.At, $"model file '{p.Value}' does not exist", "a GGUF path relative to the experiment file", full, null);
            return ModelRef.OfPath(full);
        }

        if (m.Preset is not { } preset) return null;
        var presets = MoeLab.Engine.Model.ModelPreset.All.Select(x => x.Name).ToList();
        if (MoeLab.Engine.Model.ModelPreset.Find(preset.Value) is null)
        {
            error(preset.At, $"unknown model preset '{preset.Value}'", "one of " + string.Join(", ", presets), null, StrategyCatalog.Nearest(preset.Value, presets));
            return null;
        }

        if (m.Quant is { } q && !Enum.TryParse<GgmlType>(q.Value, ignoreCase: true, out _))
        {
            var names = Enum.GetNames<GgmlType>().Select(n => n.ToLowerInvariant()).ToList();
            error(q.At, $"unknown quantization '{q.Value}'", "a ggml type such as q4_0, q4_k, q8_0, f16", null, StrategyCatalog.Nearest(q.Value.ToLowerInvariant(), names));
            return null;
        }

        return ModelRef.Synth(preset.Value, m.Layers?.Value, m.Quant?.Value.ToLowerInvariant());
    }

    private static List<string>? ResolvePrompts(RawExperiment raw, string baseDirectory, Action<SourceLocation, string, string?, string?, string?> error)
    {
        if (raw.Prompts is not { } p)
        {
            if (raw.Keys.Contains("prompts")) return null;
            error(raw.At, "missing key 'prompts'", "prompts: [\"text\", …], or {file: F}, or {dataset: F, lines: N}", null, null);
            return null;
        }

        var prompts = new List<string>(p.Inline.Select(i => i.Value));
        if (p.File is { } f && ReadFile(f, baseDirectory, error) is { } text) prompts.Add(text.TrimEnd('\n', '\r'));
        if (p.Dataset is { } d && ReadFile(d, baseDirectory, error) is { } data)
        {
            var lines = data.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0).Skip(p.Skip?.Value ?? 0);
            if (p.Lines is { } n) lines = lines.Take(n.Value);
            var taken = lines.ToList();
            if (taken.Count == 0) error(d.At, $"dataset '{d.Value}' has no prompt lines in the range asked for", "non-empty lines", null, null);
            prompts.AddRange(taken);
        }

        if (prompts.Count == 0 && p.File is null && p.Dataset is null)
            error(raw.At, "prompts is empty", "at least one prompt", null, null);
        return prompts;
    }

    private static string? ReadFile(Located<string> path, string baseDirectory, Action<SourceLocation, string, string?, string?, string?> error)
    {
        string full = Path.GetFullPath(Path.Combine(baseDirectory, path.Value));
        if (File.Exists(full)) return File.ReadAllText(full);
        error(path.At, $"prompt file '{path.Value}' does not exist", "a path relative to the experiment file", full, null);
        return null;
    }

    private static AxisValue? ResolveAxisValue(string axis, RawAxisValue v, Action<SourceLocation, string, string?, string?, string?> error)
    {
        if (axis == Axes.Budget)
        {
            var budget = BudgetSpec.TryParse(v.Scalar!.Value, out string? expected);
            if (budget is null)
            {
                error(v.At, $"'{v.Scalar.Value}' is not a budget", expected, $"'{v.Scalar.Value}'", null);
                return null;
            }

            return new AxisValue(budget.ToString(), Budget: budget);
        }

        if (axis == Axes.IoMode)
        {
            if (Axes.IoModes.Contains(v.Scalar!.Value)) return new AxisValue(v.Scalar.Value);
            error(v.At, $"unknown io_mode '{v.Scalar.Value}'", "direct (O_DIRECT, bypasses the page cache) or buffered (page cache)", null, StrategyCatalog.Nearest(v.Scalar.Value, Axes.IoModes));
            return null;
        }

        var kind = Axes.KindOf(axis)!.Value;
        var s = v.Strategy!;
        StrategyDescriptor descriptor;
        try
        {
            descriptor = StrategyCatalog.Find(kind, s.Name.Value);
        }
        catch (StrategyException e)
        {
            // The axis defaults (lru, none, native, unchanged, fifo) are the engine's built-in behaviour even before a catalog entry exists.
            if (s.Name.Value == Axes.DefaultOf(axis))
            {
                if (s.Parameters.Count == 0) return new AxisValue(s.Name.Value, StrategySpec.Of(s.Name.Value));
                error(s.Parameters[0].Key.At, $"{axis} policy '{s.Name.Value}' is the built-in default in this build and takes no parameters", "no parameters", null, null);
                return null;
            }

            var known = StrategyCatalog.All.Where(d => d.Kind == kind).Select(d => d.Name).Append(Axes.DefaultOf(axis)).Distinct().ToList();
            error(s.Name.At, $"unknown {axis} policy '{s.Name.Value}'", "one of " + string.Join(", ", known), null, StrategyCatalog.Nearest(s.Name.Value, known));
            _ = e;
            return null;
        }

        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        bool ok = true;
        foreach (var (key, value) in s.Parameters)
        {
            var info = descriptor.Parameters.FirstOrDefault(p => p.Name == key.Value);
            if (info is null)
            {
                string expected = descriptor.Parameters.Count == 0 ? "no parameters" : "one of " + string.Join(", ", descriptor.Parameters.Select(p => p.Name));
                error(key.At, $"{axis} policy '{descriptor.Name}' has no parameter '{key.Value}'", expected, null, StrategyCatalog.Nearest(key.Value, descriptor.Parameters.Select(p => p.Name)));
                ok = false;
                continue;
            }

            if (CheckParameter(info, value.Value) is { } expectedType)
            {
                error(value.At, $"{axis} policy '{descriptor.Name}', parameter '{key.Value}': bad value", expectedType, $"'{value.Value}'",
                    info.AllowedValues is { } allowed ? StrategyCatalog.Nearest(value.Value, allowed) : null);
                ok = false;
                continue;
            }

            parameters[key.Value] = value.Value;
        }

        if (!ok) return null;
        var spec = new StrategySpec(descriptor.Name, parameters);
        return new AxisValue(spec.ToString(), spec);
    }

    /// <summary>Null when <paramref name="value"/> fits the parameter's type and allowed values, else what was expected.</summary>
    private static string? CheckParameter(ParameterInfo info, string value)
    {
        if (info.AllowedValues is { Count: > 0 } allowed && !allowed.Contains(value)) return "one of " + string.Join(", ", allowed);
        return info.Type.ToLowerInvariant() switch
        {
            "int" or "integer" or "long" => long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out _) ? null : "a whole number",
            "double" or "float" or "number" => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && !double.IsNaN(d) ? null : "a number",
            "bool" or "boolean" => value.ToLowerInvariant() is "true" or "false" or "yes" or "no" or "1" or "0" ? null : "true or false",
            _ => null,
        };
    }

    [GeneratedRegex("^[A-Za-z0-9._-]+$")]
    private static partial Regex SafeName();
}
