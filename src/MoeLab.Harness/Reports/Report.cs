using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary>A report is a list of exporters run over one result set (BenchmarkDotNet's DefaultExporters).</summary>
public static class Report
{
    /// <summary>The data views: tokens, summary, telemetry, per-layer counts. Cells live in cells/*.json, so nothing is lost if a run dies before these are written.</summary>
    public static IReadOnlyList<IResultExporter> DataExporters { get; } =
        [new TokensCsvExporter(), new SummaryCsvExporter(), new SummaryJsonExporter(), new TelemetryCsvExporter(), new LayersCsvExporter(), new MarkdownTableExporter()];

    /// <summary>After each cell: the per-cell tables only (rewriting every token row after every cell would grow quadratically).</summary>
    public static IReadOnlyList<string> WriteSummaries(ResultSet results) =>
        new IResultExporter[] { new SummaryCsvExporter(), new SummaryJsonExporter(), new MarkdownTableExporter() }.SelectMany(e => e.Export(results)).ToList();

    public static IReadOnlyList<string> WriteData(ResultSet results) => DataExporters.SelectMany(e => e.Export(results)).ToList();

    /// <summary>Everything: data views, plots, report.md and the self-contained report.html.</summary>
    public static IReadOnlyList<string> WriteAll(ResultSet results)
    {
        var files = new List<string>(WriteData(results));
        var plots = new PlotExporter().Render(results);
        files.AddRange(plots.Plots.SelectMany(p => new[] { p.Png, p.Svg }));
        foreach (var e in new IResultExporter[] { new MarkdownReportExporter(plots), new HtmlReportExporter(plots) }) files.AddRange(e.Export(results));
        return files;
    }
}
