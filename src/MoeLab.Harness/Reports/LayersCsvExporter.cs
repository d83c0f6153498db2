using System.Globalization;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary>
/// <c>layers.csv</c>: each cell's expert demands per MoE layer over its measured tokens (hits, misses and prefetch
/// hits are disjoint; summed over layers they equal the cell's totals in summary.csv). Cells whose target did not
/// count per layer have no rows.
/// </summary>
public sealed class LayersCsvExporter : IResultExporter
{
    public static readonly string[] Header = ["cell_id", "name", "layer", "hits", "misses", "prefetch_hits", "requests", "hit_rate"];

    public string Name => "layers.csv";

    public IReadOnlyList<string> Export(ResultSet results)
    {
        string path = Path.Combine(results.Directory, Name);
        Csv.Write(path, csv =>
        {
            Csv.Row(csv, Header);
            foreach (var cell in results.Cells)
            {
                foreach (var l in cell.Result.ExpertsByLayer)
                {
                    Csv.Row(csv, [cell.CellId, cell.Name, L(l.Layer), L(l.Hits), L(l.Misses), L(l.PrefetchHits), L(l.Requests), Csv.Number(l.HitRate)]);
                }
            }
        });
        return [path];
    }

    private static string L(long v) => v.ToString(CultureInfo.InvariantCulture);
}
