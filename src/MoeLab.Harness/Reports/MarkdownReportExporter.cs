using System.Text;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary><c>report.md</c>: provenance, method, the summary table, the plots (linked PNGs) and what could not be measured.</summary>
public sealed class MarkdownReportExporter(PlotSet plots) : IResultExporter
{
    public string Name => "report.md";

    public IReadOnlyList<string> Export(ResultSet results)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"# {results.Manifest.Experiment}").AppendLine();
        if (results.Manifest.Description is { } d) sb.AppendLine(d.Trim()).AppendLine();
        sb.AppendLine("## Provenance").AppendLine();
        foreach (var (k, v) in ReportText.Provenance(results)) sb.AppendLine($"- **{k}**: {v}");
        sb.AppendLine().AppendLine("## Method").AppendLine();
        foreach (string line in ReportText.Method(results)) sb.AppendLine("- " + line);
        sb.AppendLine().AppendLine($"## Results ({results.Cells.Count} cells)").AppendLine();
        sb.AppendLine(MarkdownTableExporter.Table(results));
        foreach (var p in plots.Plots)
        {
            string rel = Path.GetRelativePath(results.Directory, p.Png).Replace('\\', '/');
            string relSvg = Path.GetRelativePath(results.Directory, p.Svg).Replace('\\', '/');
            sb.AppendLine($"### {p.Title}").AppendLine().AppendLine($"![{p.Title}]({rel})").AppendLine().AppendLine($"{p.Caption} ([SVG]({relSvg}))").AppendLine();
        }

        var missing = ReportText.Missing(results, plots);
        if (missing.Count > 0)
        {
            sb.AppendLine("## Not measured or not drawn").AppendLine();
            foreach (string m in missing) sb.AppendLine("- " + m);
        }

        string path = Path.Combine(results.Directory, Name);
        ResultStore.WriteAtomic(path, s => s.Write(Encoding.UTF8.GetBytes(sb.ToString())));
        return [path];
    }
}
