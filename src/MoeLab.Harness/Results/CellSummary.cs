using MoeLab.DeviceAgent.Api;

namespace MoeLab.Harness.Results;

/// <summary>
/// One row of <c>summary.csv</c>/<c>summary.json</c>: a cell's configuration and its figures, every one computed
/// from the per-token rows (so it can be recomputed from <c>tokens.csv</c>). NaN = not measured.
/// </summary>
public sealed record CellSummary
{
    public required string CellId { get; init; }

    public required string Name { get; init; }

    public bool IsBaseline { get; init; }

    public required string Target { get; init; }

    public required string Source { get; init; }

    public required string Model { get; init; }

    public required string Cache { get; init; }

    public required string Budget { get; init; }

    /// <summary>Bytes of the expert cache; -1 = every expert resident.</summary>
    public long BudgetBytes { get; init; }

    public required string Prefetch { get; init; }

    public required string Precision { get; init; }

    public required string Routing { get; init; }

    public required string IoMode { get; init; }

    public required string Io { get; init; }

    public int Repetitions { get; init; }

    public int Tokens { get; init; }

    public double TpsMean { get; init; }

    public double TpsMedian { get; init; }

    public double TpsStddev { get; init; }

    public double TpsCi95Low { get; init; }

    public double TpsCi95High { get; init; }

    public int TpsOutliers { get; init; }

    public double[] TpsPerRepetition { get; init; } = [];

    public long Hits { get; init; }

    public long Misses { get; init; }

    public long PrefetchHits { get; init; }

    /// <summary>Demands served from RAM, cached or prefetched: (hits + prefetch hits) / (hits + misses + prefetch hits).</summary>
    public double HitRate { get; init; }

    public long BytesRead { get; init; }

    public double BytesPerToken { get; init; }

    public double SsdMbPerS { get; init; }

    public double IoMsPerToken { get; init; }

    public double ComputeMsPerToken { get; init; }

    public double StallMsPerToken { get; init; }

    public long PeakRssBytes { get; init; }

    public double PrefetchPrecision { get; init; } = double.NaN;

    public double PrefetchRecall { get; init; } = double.NaN;

    public double MeanKl { get; init; } = double.NaN;

    public double Top1Agreement { get; init; } = double.NaN;

    /// <summary>Perplexity of the quality reference text under this cell's strategies (NaN unless measure_quality).</summary>
    public double Perplexity { get; init; } = double.NaN;

    /// <summary>The same text's perplexity under the exact model: what <see cref="Perplexity"/> is read against.</summary>
    public double ExactPerplexity { get; init; } = double.NaN;

    public double RatioToBaseline { get; init; } = double.NaN;

    public double RatioCi95Low { get; init; } = double.NaN;

    public double RatioCi95High { get; init; } = double.NaN;

    /// <summary>Tokens/s of each repetition: its tokens over the sum of their wall times.</summary>
    public static double[] TokensPerSecondByRepetition(IEnumerable<TokenEvent> tokens) =>
        tokens.GroupBy(t => t.Repetition).OrderBy(g => g.Key)
            .Select(g => g.Count() / (g.Sum(t => t.WallMs) / 1000.0))
            .ToArray();

    public static CellSummary Of(CellRecord record)
    {
        var tokens = record.Result.TokenEvents;
        var perRep = TokensPerSecondByRepetition(tokens);
        var tps = Described.Of(perRep);
        long hits = tokens.Sum(t => (long)t.Hits), misses = tokens.Sum(t => (long)t.Misses), prefetchHits = tokens.Sum(t => (long)t.PrefetchHits);
        long requests = hits + misses + prefetchHits;
        long bytes = tokens.Sum(t => t.BytesRead);
        double wallSeconds = tokens.Sum(t => t.WallMs) / 1000.0;
        int n = tokens.Length;
        double PerToken(double total) => n == 0 ? double.NaN : total / n;
        return new CellSummary
        {
            CellId = record.CellId,
            Name = record.Name,
            IsBaseline = record.IsBaseline,
            Target = record.Target,
            Source = record.Result.Source,
            Model = record.Cell.Model,
            Cache = record.Cell.Cache,
            Budget = record.Values.GetValueOrDefault("budget", "all"),
            BudgetBytes = record.Cell.BudgetBytes ?? -1,
            Prefetch = record.Cell.Prefetch,
            Precision = record.Cell.Precision,
            Routing = record.Cell.Routing,
            IoMode = record.Cell.IoMode,
            Io = record.Cell.Io,
            Repetitions = perRep.Length,
            Tokens = n,
            TpsMean = tps.Mean,
            TpsMedian = tps.Median,
            TpsStddev = tps.StdDev,
            TpsCi95Low = tps.Ci95Low,
            TpsCi95High = tps.Ci95High,
            TpsOutliers = tps.Outliers,
            TpsPerRepetition = perRep,
            Hits = hits,
            Misses = misses,
            PrefetchHits = prefetchHits,
            HitRate = requests == 0 ? double.NaN : (hits + prefetchHits) / (double)requests,
            BytesRead = bytes,
            BytesPerToken = PerToken(bytes),
            SsdMbPerS = wallSeconds > 0 ? bytes / 1e6 / wallSeconds : double.NaN,
            IoMsPerToken = PerToken(tokens.Sum(t => t.IoMs)),
            ComputeMsPerToken = PerToken(tokens.Sum(t => t.ComputeMs)),
            StallMsPerToken = PerToken(tokens.Sum(t => t.StallMs)),
            PeakRssBytes = record.Result.PeakRssBytes,
            PrefetchPrecision = record.Result.PrefetchPrecision ?? double.NaN,
            PrefetchRecall = record.Result.PrefetchRecall ?? double.NaN,
            MeanKl = record.Result.MeanKlDivergence ?? double.NaN,
            Top1Agreement = record.Result.Top1Agreement ?? double.NaN,
            Perplexity = record.Result.Perplexity ?? double.NaN,
            ExactPerplexity = record.Result.ExactPerplexity ?? double.NaN,
        };
    }
}
