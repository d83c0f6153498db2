using System.Globalization;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary>
/// <c>telemetry.csv</c>: the time series of every cell (seconds since the cell started, then one column per metric
/// across all cells). A reading the device did not expose is written <c>unavailable</c>, never a made-up number.
/// </summary>
public sealed class TelemetryCsvExporter : IResultExporter
{
    public const string Unavailable = "unavailable";

    public string Name => "telemetry.csv";

    public IReadOnlyList<string> Export(ResultSet results)
    {
        var metrics = new List<string> { "tokens_per_s" };
        foreach (var c in results.Cells)
        {
            foreach (string m in c.Telemetry.MetricNames)
            {
                if (!metrics.Contains(m)) metrics.Add(m);
            }
        }

        string path = Path.Combine(results.Directory, Name);
        Csv.Write(path, csv =>
        {
            Csv.Row(csv, new[] { "cell_id", "seconds" }.Concat(metrics));
            foreach (var c in results.Cells)
            {
                var index = c.Telemetry.MetricNames.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i);
                foreach (var row in c.Telemetry.Rows)
                {
                    var fields = new List<string> { c.CellId, row.Seconds.ToString("R", CultureInfo.InvariantCulture) };
                    foreach (string m in metrics)
                        fields.Add(index.TryGetValue(m, out int i) && i < row.Values.Length && row.Values[i] is { } v && !double.IsNaN(v) ? v.ToString("R", CultureInfo.InvariantCulture) : Unavailable);
                    Csv.Row(csv, fields);
                }
            }
        });
        return [path];
    }
}
