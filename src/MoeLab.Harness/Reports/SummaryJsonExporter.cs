using System.Text.Json;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary><c>summary.json</c>: the same rows as summary.csv plus each cell's per-repetition tokens/s.</summary>
public sealed class SummaryJsonExporter : IResultExporter
{
    public string Name => "summary.json";

    public IReadOnlyList<string> Export(ResultSet results)
    {
        string path = Path.Combine(results.Directory, Name);
        ResultStore.WriteAtomic(path, s => JsonSerializer.Serialize(s, results.Summaries.ToList(), ResultsJson.Default.ListCellSummary));
        return [path];
    }
}
