using System.Globalization;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary><c>summary.csv</c>: one row per cell, the configuration then the figures (llama-bench's CSV shape: one flat row per test).</summary>
public sealed class SummaryCsvExporter : IResultExporter
{
    public static readonly string[] Header =
    [
        "cell_id", "name", "is_baseline", "target", "source", "model", "cache", "budget", "budget_bytes", "prefetch", "precision", "routing", "io_mode", "io",
        "repetitions", "tokens", "tps_mean", "tps_median", "tps_stddev", "tps_ci95_low", "tps_ci95_high", "tps_outliers",
        "hits", "misses", "prefetch_hits", "hit_rate", "bytes_read", "bytes_per_token", "ssd_mb_per_s", "io_ms_per_token", "compute_ms_per_token", "stall_ms_per_token",
        "peak_rss_bytes", "prefetch_precision", "prefetch_recall", "mean_kl", "top1_agreement", "ratio_to_baseline", "ratio_ci95_low", "ratio_ci95_high",
        "perplexity", "exact_perplexity",
    ];

    public string Name => "summary.csv";

    public IReadOnlyList<string> Export(ResultSet results)
    {
        string path = Path.Combine(results.Directory, Name);
        Csv.Write(path, csv =>
        {
            Csv.Row(csv, Header);
            foreach (var s in results.Summaries)
            {
                Csv.Row(csv,
                [
                    s.CellId, s.Name, s.IsBaseline ? "true" : "false", s.Target, s.Source, s.Model, s.Cache, s.Budget, L(s.BudgetBytes), s.Prefetch, s.Precision, s.Routing, s.IoMode, s.Io,
                    L(s.Repetitions), L(s.Tokens), Csv.Number(s.TpsMean), Csv.Number(s.TpsMedian), Csv.Number(s.TpsStddev), Csv.Number(s.TpsCi95Low), Csv.Number(s.TpsCi95High), L(s.TpsOutliers),
                    L(s.Hits), L(s.Misses), L(s.PrefetchHits), Csv.Number(s.HitRate), L(s.BytesRead), Csv.Number(s.BytesPerToken), Csv.Number(s.SsdMbPerS),
                    Csv.Number(s.IoMsPerToken), Csv.Number(s.ComputeMsPerToken), Csv.Number(s.StallMsPerToken),
                    L(s.PeakRssBytes), Csv.Number(s.PrefetchPrecision), Csv.Number(s.PrefetchRecall), Csv.Number(s.MeanKl), Csv.Number(s.Top1Agreement),
                    Csv.Number(s.RatioToBaseline), Csv.Number(s.RatioCi95Low), Csv.Number(s.RatioCi95High),
                    Csv.Number(s.Perplexity), Csv.Number(s.ExactPerplexity),
                ]);
            }
        });
        return [path];
    }

    private static string L(long v) => v.ToString(CultureInfo.InvariantCulture);
}
