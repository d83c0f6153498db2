using System.Globalization;
using System.Text;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary>
/// <c>summary.md</c>: the table researchers paste into issues — llama-bench's markdown shape (configuration columns,
/// then <c>t/s</c> as mean ± stddev) with BenchmarkDotNet's statistics columns (Error = CI half-width, Median, Ratio).
/// </summary>
public sealed class MarkdownTableExporter : IResultExporter
{
    public string Name => "summary.md";

    public IReadOnlyList<string> Export(ResultSet results)
    {
        string path = Path.Combine(results.Directory, Name);
        string text = Table(results);
        ResultStore.WriteAtomic(path, s => s.Write(Encoding.UTF8.GetBytes(text)));
        return [path];
    }

    public static string Table(ResultSet results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| model | target | cache | budget | prefetch | precision | routing | io_mode | io | test | t/s | Error | Median | hit rate | MB read/token | Ratio |");
        sb.AppendLine("| --- | --- | --- | ---: | --- | --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var s in results.Summaries)
        {
            string model = ModelName(s.Model);
            string test = "tg" + results.Manifest.GenerateTokens.ToString(CultureInfo.InvariantCulture);
            string ratio = double.IsNaN(s.RatioToBaseline) ? "—"
                : s.IsBaseline ? "1.00 (baseline)"
                : F(s.RatioToBaseline, "0.00") + (double.IsNaN(s.RatioCi95Low) ? "" : $" [{F(s.RatioCi95Low, "0.00")}, {F(s.RatioCi95High, "0.00")}]");
            sb.AppendLine(string.Join(" | ", new[]
            {
                "| " + model, s.Target, s.Cache, s.Budget, s.Prefetch, s.Precision, s.Routing, s.IoMode, s.Io, test,
                F(s.TpsMean, "0.00") + " ± " + F(s.TpsStddev, "0.00"), F((s.TpsCi95High - s.TpsCi95Low) / 2, "0.00"), F(s.TpsMedian, "0.00"),
                F(s.HitRate, "0.000"), F(s.BytesPerToken / 1e6, "0.###"), ratio + " |",
            }));
        }

        var measured = results.Summaries.Where(s => !double.IsNaN(s.MeanKl)).ToList();
        if (measured.Count > 0)
        {
            // Quality cost (measure_quality): teacher-forced next-token KL and top-1 against the exact model, and perplexity.
            sb.AppendLine().AppendLine("| cell | precision | routing | mean KL (nats) | top-1 agreement | perplexity | exact perplexity | t/s |");
            sb.AppendLine("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |");
            foreach (var s in measured)
            {
                sb.AppendLine(string.Join(" | ", new[]
                {
                    "| " + s.Name, s.Precision, s.Routing, F(s.MeanKl, "0.00000"), F(s.Top1Agreement, "0.000"), F(s.Perplexity, "0.00"), F(s.ExactPerplexity, "0.00"), F(s.TpsMean, "0.00") + " |",
                }));
            }
        }

        return sb.ToString();
    }

    private static string ModelName(string model) => model.StartsWith("synth:", StringComparison.Ordinal) ? model : Path.GetFileName(model);

    private static string F(double v, string format) => double.IsNaN(v) ? "—" : v.ToString(format, CultureInfo.InvariantCulture);
}
