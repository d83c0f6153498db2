using System.Globalization;
using CsvHelper;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary>CSV files written through CsvHelper under the invariant culture, atomically.</summary>
internal static class Csv
{
    public static void Write(string path, Action<CsvWriter> write) =>
        ResultStore.WriteAtomic(path, s =>
        {
            // CsvHelper writes strings as given; every number reaches it already formatted with the invariant culture.
            using var csv = CsvWriter.Create(s, null, leaveOpen: true);
            write(csv);
            csv.Flush();
        });

    /// <summary>Round-trip text for a number; empty for NaN (not measured).</summary>
    public static string Number(double value) => double.IsNaN(value) ? "" : value.ToString("R", CultureInfo.InvariantCulture);

    public static void Row(CsvWriter csv, IEnumerable<string> fields)
    {
        foreach (string f in fields) csv.WriteField(f);
        csv.EndRecord();
    }
}
