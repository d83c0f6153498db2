using System.Globalization;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary><c>tokens.csv</c>: one row per measured token of every cell, with the engine's counters for it.</summary>
public sealed class TokensCsvExporter : IResultExporter
{
    public static readonly string[] Header = ["cell_id", "repetition", "index", "token_id", "wall_ms", "hits", "misses", "prefetch_hits", "bytes_read", "io_ms", "compute_ms", "stall_ms"];

    public string Name => "tokens.csv";

    public IReadOnlyList<string> Export(ResultSet results)
    {
        string path = Path.Combine(results.Directory, Name);
        Csv.Write(path, csv =>
        {
            Csv.Row(csv, Header);
            foreach (var cell in results.Cells)
            {
                foreach (var t in cell.Result.TokenEvents)
                {
                    Csv.Row(csv,
                    [
                        cell.CellId, I(t.Repetition), I(t.Index), I(t.TokenId), Csv.Number(t.WallMs), I(t.Hits), I(t.Misses), I(t.PrefetchHits),
                        t.BytesRead.ToString(CultureInfo.InvariantCulture), Csv.Number(t.IoMs), Csv.Number(t.ComputeMs), Csv.Number(t.StallMs),
                    ]);
                }
            }
        });
        return [path];
    }

    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
}
