using MoeLab.Harness.Results;

namespace MoeLab.Harness.Reports;

/// <summary>One view of a result set written into its directory (BenchmarkDotNet's exporters): returns the files it wrote.</summary>
public interface IResultExporter
{
    string Name { get; }

    IReadOnlyList<string> Export(ResultSet results);
}
