using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using MoeLab.DeviceAgent.Api;

namespace MoeLab.Harness.Experiments;

/// <summary>
/// One cell of the expanded matrix: its readable name (the swept axes' values), a stable id, the hash of its full
/// configuration, and the resolved <see cref="RunCell"/> a target executes.
/// </summary>
public sealed record ExperimentCell(string Name, string Id, string ConfigHash, IReadOnlyDictionary<string, string> Values, RunCell Cell, bool IsBaseline);

/// <summary>
/// Matrix expansion as one pure function (llama-bench's get_cmd_params_instances): the Cartesian product of every
/// axis in <see cref="Axes.All"/> order, minus exclusions. Ids depend only on each cell's configuration, so a
/// changed or reordered matrix keeps the ids of unchanged cells and <c>--resume</c> recognises them.
/// </summary>
public static class Matrix
{
    /// <summary>Every non-excluded combination, one value per axis, last axis varying fastest.</summary>
    public static IEnumerable<AxisValue[]> Combinations(Experiment experiment)
    {
        var axes = experiment.Axes;
        var index = new int[axes.Count];
        while (true)
        {
            var combo = new AxisValue[axes.Count];
            for (int a = 0; a < axes.Count; a++) combo[a] = axes[a].Values[index[a]];
            if (!experiment.Exclusions.Any(e => Excludes(experiment, e, combo))) yield return combo;
            int i = axes.Count - 1;
            while (i >= 0 && ++index[i] == axes[i].Values.Count)
            {
                index[i] = 0;
                i--;
            }

            if (i < 0) yield break;
        }
    }

    public static bool IsBaseline(Experiment experiment, AxisValue[] combo) =>
        experiment.Baseline is { } b && b.All(kv => combo[IndexOf(experiment, kv.Key)].Matches(kv.Value));

    /// <summary>
    /// Expands the experiment into run cells. <paramref name="totalExpertBytes"/> (the model's routed-expert bytes)
    /// resolves fractional budgets; it may be null when no budget is a fraction.
    /// </summary>
    public static IReadOnlyList<ExperimentCell> Expand(Experiment experiment, long? totalExpertBytes)
    {
        var swept = experiment.Axes.Where(a => a.Values.Count > 1).Select(a => a.Name).ToHashSet(StringComparer.Ordinal);
        var cells = new List<ExperimentCell>();
        foreach (var combo in Combinations(experiment))
        {
            var values = new Dictionary<string, string>(StringComparer.Ordinal);
            for (int a = 0; a < combo.Length; a++) values[experiment.Axes[a].Name] = combo[a].Text;
            string Value(string axis) => values[axis];
            var budget = combo[IndexOf(experiment, Axes.Budget)].Budget!;
            var cell = new RunCell
            {
                CellId = "",
                Experiment = "",
                Model = experiment.Model.ToString(),
                Prompts = experiment.Prompts.ToArray(),
                GenerateTokens = experiment.Generate,
                WarmupTokens = experiment.Warmup,
                Repetitions = experiment.Repetitions,
                Seed = experiment.Seed,
                Temperature = experiment.Temperature,
                TopK = experiment.TopK,
                TopP = experiment.TopP,
                Threads = experiment.Threads,
                BudgetBytes = budget.Resolve(totalExpertBytes),
                Cache = Value(Axes.Cache),
                Prefetch = Value(Axes.Prefetch),
                Precision = Value(Axes.Precision),
                Routing = Value(Axes.Routing),
                Io = Value(Axes.Io),
                IoMode = Value(Axes.IoMode),
                RecordTrace = experiment.RecordTrace,
                Trace = experiment.Trace,
                TraceFormat = experiment.TraceFormat,
                ModelPreset = experiment.Target.StartsWith("sim:", StringComparison.Ordinal) ? experiment.Model.Preset : null,
                MeasureQuality = experiment.MeasureQuality,
            };

            // The hash covers everything that can change a result (not the experiment's name, which only files it).
            string hash = Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(cell, RunCellJson.Default.RunCell)));
            var sweptValues = Axes.All.Where(swept.Contains).Select(a => values[a]).ToList();
            string name = sweptValues.Count == 0 ? "default" : string.Join(" ", Axes.All.Where(swept.Contains).Select(a => $"{a}={values[a]}"));
            string id = Slug(sweptValues.Count == 0 ? "cell" : string.Join("_", sweptValues)) + "-" + hash[..8];
            cells.Add(new ExperimentCell(name, id, hash, values, cell with { CellId = id, Experiment = experiment.Name }, IsBaseline(experiment, combo)));
        }

        return cells;
    }

    private static bool Excludes(Experiment experiment, Exclusion exclusion, AxisValue[] combo) =>
        exclusion.Match.All(kv => kv.Value.Any(v => combo[IndexOf(experiment, kv.Key)].Matches(v)));

    private static int IndexOf(Experiment experiment, string axis)
    {
        for (int i = 0; i < experiment.Axes.Count; i++)
        {
            if (experiment.Axes[i].Name == axis) return i;
        }

        throw new ArgumentException($"no axis '{axis}'", nameof(axis));
    }

    /// <summary>File- and URL-safe: letters, digits, '.', '-', '_'; anything else becomes '_'. Kept short.</summary>
    private static string Slug(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (char c in text)
            sb.Append(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' ? c : c == '%' ? 'p' : '_');
        string s = sb.ToString();
        return s.Length > 60 ? s[..60] : s;
    }
}
