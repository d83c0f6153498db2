using System.Globalization;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary>The report's prose, shared by the Markdown and HTML reports: provenance, method, and what is missing.</summary>
internal static class ReportText
{
    public static IReadOnlyList<(string Key, string Value)> Provenance(ResultSet r)
    {
        var m = r.Manifest;
        return
        [
            ("experiment file", $"{m.ExperimentFile} (SHA-256 {m.ExperimentSha256})"),
            ("target", m.Target),
            ("model", m.Model),
            ("git commit", m.GitCommit + (m.GitDirty == true ? " (with uncommitted changes)" : "")),
            ("machine", $"{m.Machine}: {m.CpuModel}, {m.Cores} cores, {(m.RamBytes / (double)(1L << 30)).ToString("0.#", CultureInfo.InvariantCulture)} GiB RAM"),
            ("OS", $"{m.Os} ({m.Architecture})"),
            ("disk", m.Disk),
            (".NET", m.DotNetVersion),
            ("seed", m.Seed.ToString(CultureInfo.InvariantCulture)),
            ("created", m.Created.ToString("u", CultureInfo.InvariantCulture) + (m.Resumed.Count > 0 ? $"; resumed {m.Resumed.Count}×" : "")),
        ];
    }

    public static IReadOnlyList<string> Method(ResultSet r)
    {
        var m = r.Manifest;
        var lines = new List<string>
        {
            $"Each cell generates {m.GenerateTokens} tokens per repetition after {m.WarmupTokens} warm-up tokens, {m.Repetitions} repetition(s). Tokens/s of a repetition = its tokens / the sum of their wall times.",
            Described.OutlierPolicy,
            "Ratios to the baseline are ratios of mean tokens/s; their 95% intervals use the delta method (first order, independent samples).",
            "io_mode direct reads experts with O_DIRECT (the page cache cannot serve them); buffered goes through the page cache, so re-reads may come from RAM.",
        };
        var baseline = r.Baseline;
        lines.Add(baseline is null ? "No baseline cell was named (baseline: in the experiment), so no ratios are given." : $"Baseline: {baseline.Name} ({baseline.CellId}).");
        return lines;
    }

    public static IReadOnlyList<string> Missing(ResultSet r, PlotSet plots)
    {
        var lines = new List<string>(plots.NotDrawn);
        foreach (var (source, why) in r.Manifest.UnavailableTelemetry) lines.Add($"telemetry '{source}' unavailable on the host: {why}");
        foreach (var f in r.Failures) lines.Add($"cell {f.Name} ({f.CellId}) failed on {f.Target}: {f.Error}");
        return lines;
    }
}
