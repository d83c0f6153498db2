namespace MoeLab.Harness.Results;

/// <summary>A result set loaded from disk: the manifest, every finished cell, failures, and the summary rows (with baseline ratios).</summary>
public sealed class ResultSet
{
    private ResultSet(ResultStore store, Manifest manifest, IReadOnlyList<(CellRecord Record, CellSummary Summary)> cells, IReadOnlyList<CellFailure> failures)
    {
        Store = store;
        Manifest = manifest;
        Cells = cells.Select(c => c.Record).ToList();
        Failures = failures;
        Summaries = WithBaselineRatios(cells.Select(c => c.Summary).ToList());
    }

    public ResultStore Store { get; }

    public string Directory => Store.Directory;

    public Manifest Manifest { get; }

    public IReadOnlyList<CellRecord> Cells { get; }

    public IReadOnlyList<CellFailure> Failures { get; }

    public IReadOnlyList<CellSummary> Summaries { get; }

    public CellSummary? Baseline => Summaries.FirstOrDefault(s => s.IsBaseline);

    public static ResultSet Load(string directory) => Load(ResultStore.Open(directory));

    /// <summary>Loads the set; through the same store again, only cells finished since are read (see <see cref="ResultStore.LoadFinished"/>).</summary>
    public static ResultSet Load(ResultStore store) => new(store, store.ReadManifest(), store.LoadFinished(), store.LoadFailures());

    private static List<CellSummary> WithBaselineRatios(List<CellSummary> rows)
    {
        var baseline = rows.FirstOrDefault(r => r.IsBaseline);
        if (baseline is null) return rows;
        var b = Described.Of(baseline.TpsPerRepetition);
        return rows.Select(r =>
        {
            var (ratio, low, high) = Described.Of(r.TpsPerRepetition).RatioTo(b);
            return r with { RatioToBaseline = ratio, RatioCi95Low = low, RatioCi95High = high };
        }).ToList();
    }
}
