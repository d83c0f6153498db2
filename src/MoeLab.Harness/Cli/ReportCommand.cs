using MoeLab.Harness.Reports;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab report DIR</c>: regenerates every view, plot and report of a result set from its files.</summary>
public sealed class ReportCommand : ICliCommand
{
    public string Name => "report";

    public string Summary => "regenerate summary, plots, report.md and report.html of a result set";

    public string Usage => "usage: moelab report RESULTS_DIR   (a directory holding manifest.json and cells/)";

    public int Run(CliArgs args)
    {
        args.EnsureAllUsed();
        if (args.Positional.Count != 1) throw new CliUsageException("give exactly one results directory");
        var results = ResultSet.Load(args.Positional[0]);
        var files = Report.WriteAll(results);
        Console.WriteLine($"{results.Cells.Count} cell(s); wrote {files.Count} files; report: {Path.Combine(results.Directory, "report.html")}");
        return 0;
    }
}
