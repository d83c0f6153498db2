using System.Globalization;
using System.Net;
using System.Text;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary><c>report.html</c>: the report as one self-contained page; every plot is embedded as a base64 PNG.</summary>
public sealed class HtmlReportExporter(PlotSet plots) : IResultExporter
{
    public string Name => "report.html";

    public IReadOnlyList<string> Export(ResultSet results)
    {
        static string E(string s) => WebUtility.HtmlEncode(s);
        static string F(double v, string format) => double.IsNaN(v) ? "—" : v.ToString(format, CultureInfo.InvariantCulture);
        var sb = new StringBuilder();
        sb.AppendLine("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">");
        sb.AppendLine($"<title>{E(results.Manifest.Experiment)} — MoeLab report</title>");
        sb.AppendLine("<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}img{max-width:100%}.b{background:#f0f0f0}</style>");
        sb.AppendLine("</head><body>");
        sb.AppendLine($"<h1>{E(results.Manifest.Experiment)}</h1>");
        if (results.Manifest.Description is { } d) sb.AppendLine($"<p>{E(d.Trim())}</p>");
        sb.AppendLine("<h2>Provenance</h2><ul>");
        foreach (var (k, v) in ReportText.Provenance(results)) sb.AppendLine($"<li><b>{E(k)}</b>: {E(v)}</li>");
        sb.AppendLine("</ul><h2>Method</h2><ul>");
        foreach (string line in ReportText.Method(results)) sb.AppendLine($"<li>{E(line)}</li>");
        sb.AppendLine($"</ul><h2>Results ({results.Cells.Count} cells)</h2><table><tr>");
        foreach (string h in new[] { "cell", "cache", "budget", "prefetch", "precision", "routing", "io_mode", "io", "t/s mean", "± 95% CI", "median", "stddev", "hit rate", "MB read/token", "ratio" })
            sb.Append($"<th class=\"{(h is "cell" or "cache" or "prefetch" or "precision" or "routing" or "io_mode" or "io" ? "l" : "")}\">{E(h)}</th>");
        sb.AppendLine("</tr>");
        foreach (var s in results.Summaries)
        {
            string ratio = double.IsNaN(s.RatioToBaseline) ? "—" : F(s.RatioToBaseline, "0.00") + (double.IsNaN(s.RatioCi95Low) ? "" : $" [{F(s.RatioCi95Low, "0.00")}, {F(s.RatioCi95High, "0.00")}]");
            sb.Append(s.IsBaseline ? "<tr class=\"b\">" : "<tr>");
            foreach (string c in new[] { s.Name, s.Cache, s.Budget, s.Prefetch, s.Precision, s.Routing, s.IoMode, s.Io })
                sb.Append($"<td class=\"l\">{E(c)}</td>");
            foreach (string c in new[] { F(s.TpsMean, "0.00"), F((s.TpsCi95High - s.TpsCi95Low) / 2, "0.00"), F(s.TpsMedian, "0.00"), F(s.TpsStddev, "0.00"), F(s.HitRate, "0.000"), F(s.BytesPerToken / 1e6, "0.###"), ratio })
                sb.Append($"<td>{E(c)}</td>");
            sb.AppendLine("</tr>");
        }

        sb.AppendLine("</table>");
        foreach (var p in plots.Plots)
        {
            string data = Convert.ToBase64String(File.ReadAllBytes(p.Png));
            sb.AppendLine($"<h3>{E(p.Title)}</h3><img alt=\"{E(p.Title)}\" src=\"data:image/png;base64,{data}\"><p>{E(p.Caption)}</p>");
        }

        var missing = ReportText.Missing(results, plots);
        if (missing.Count > 0)
        {
            sb.AppendLine("<h2>Not measured or not drawn</h2><ul>");
            foreach (string m in missing) sb.AppendLine($"<li>{E(m)}</li>");
            sb.AppendLine("</ul>");
        }

        sb.AppendLine("</body></html>");
        string path = Path.Combine(results.Directory, Name);
        ResultStore.WriteAtomic(path, s => s.Write(Encoding.UTF8.GetBytes(sb.ToString())));
        return [path];
    }
}
