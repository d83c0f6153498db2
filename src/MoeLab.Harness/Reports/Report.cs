using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary>A report is a list of exporters run over one result set (BenchmarkDotNet's DefaultExporters).</summary>
public static class Report
{
    /// <summary>The data views refreshed after every cell: cheap, and enough to lose nothing if the run dies.</summary>
    public static IReadOnlyList<IResultExporter> DataExporters { get; } =
        [new TokensCsvExporter(), new SummaryCsvExporter(), new SummaryJsonExporter(), new TelemetryCsvExporter(), new MarkdownTableExporter()];

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
