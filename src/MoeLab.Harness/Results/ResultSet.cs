namespace MoeLab.Harness.Results;

/// <summary>A result set loaded from disk: the manifest, every finished cell, failures, and the summary rows (with baseline ratios).</summary>
public sealed class ResultSet
{
    private ResultSet(ResultStore store, Manifest manifest, IReadOnlyList<CellRecord> cells, IReadOnlyList<CellFailure> failures)
    {
        Store = store;
        Manifest = manifest;
        Cells = cells;
        Failures = failures;
        Summaries = Summarize(cells);
    }

    public ResultStore Store { get; }

    public string Directory => Store.Directory;

    public Manifest Manifest { get; }

    public IReadOnlyList<CellRecord> Cells { get; }

    public IReadOnlyList<CellFailure> Failures { get; }

    public IReadOnlyList<CellSummary> Summaries { get; }

    public CellSummary? Baseline => Summaries.FirstOrDefault(s => s.IsBaseline);

    public static ResultSet Load(string directory) => Load(ResultStore.Open(directory));

    public static ResultSet Load(ResultStore store) => new(store, store.ReadManifest(), store.LoadCells(), store.LoadFailures());

    private static List<CellSummary> Summarize(IReadOnlyList<CellRecord> cells)
    {
        var rows = cells.Select(CellSummary.Of).ToList();
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
