using System.Globalization;
using MoeLab.Harness.Experiments;
using MoeLab.Harness.Reports;
using MoeLab.Harness.Results;
using MoeLab.Harness.Runs;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab run</c>: validates, expands, runs every cell through the experiment's target, writes results and the report.</summary>
public sealed class RunCommand : ICliCommand
{
    public string Name => "run";

    public string Summary => "run an experiment matrix and write results/EXPERIMENT/TIMESTAMP with a report";

    public string Usage =>
        "usage: moelab run EXPERIMENT.yaml [--resume] [--dry-run] [--results DIR] [--telemetry-hz 4] [--no-report]\n" +
        "  --results DIR   root of result sets (default ./results); this run writes DIR/EXPERIMENT/TIMESTAMP/\n" +
        "  --resume        continue the newest result set of this experiment, skipping cells already finished\n" +
        "  --dry-run       print the expanded matrix and stop";

    public int Run(CliArgs args)
    {
        bool resume = args.Flag("resume");
        bool dryRun = args.Flag("dry-run");
        bool noReport = args.Flag("no-report");
        string root = args.Option("results") ?? "results";
        double hz = args.Double("telemetry-hz", 4);
        args.EnsureAllUsed();
        if (args.Positional.Count != 1) throw new CliUsageException("give exactly one experiment file");
        if (hz <= 0 || hz > 1000) throw new CliUsageException("--telemetry-hz must be in (0, 1000]");

        Experiment experiment;
        IReadOnlyList<ExperimentCell> cells;
        try
        {
            experiment = ExperimentReader.Load(args.Positional[0]);
            bool fractions = experiment.Axes.Single(a => a.Name == Axes.Budget).Values.Any(v => v.Budget!.Fraction is not null);
            cells = Matrix.Expand(experiment, fractions ? ModelSizes.TotalExpertBytes(experiment.Model) : null);
        }
        catch (ExperimentException e)
        {
            foreach (var error in e.Errors) Console.Error.WriteLine("error: " + error);
            return 1;
        }

        if (dryRun)
        {
            PrintMatrix(experiment, cells);
            return 0;
        }

        ResultStore store;
        if (resume && ResultStore.Latest(root, experiment.Name) is { } latest)
        {
            store = latest;
            var manifest = store.ReadManifest();
            if (manifest.ExperimentSha256 != experiment.SourceSha256)
                Console.WriteLine($"note: {experiment.SourceFile} changed since this result set began; cells are matched by id (which hashes each cell's configuration), so only unchanged cells are skipped");
            manifest.Resumed.Add(DateTimeOffset.UtcNow);
            store.WriteManifest(manifest);
            Console.WriteLine($"resuming {store.Directory}: {cells.Count(c => store.IsComplete(c.Id))} of {cells.Count} cells already finished");
        }
        else
        {
            if (resume) Console.WriteLine($"nothing to resume under {Path.Combine(root, experiment.Name)}; starting a new result set");
            store = ResultStore.Create(root, experiment.Name, DateTimeOffset.UtcNow);
            store.WriteManifest(Manifest.Collect(experiment, store.Directory));
            Console.WriteLine($"writing {store.Directory}");
        }

        var target = CellTargets.Create(experiment.Target, experiment, Console.Out);
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // First Ctrl+C: stop after the current cell is recorded; a second one kills as usual.
            e.Cancel = !cancel.IsCancellationRequested;
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        RunOutcome outcome;
        try
        {
            var runner = new ExperimentRunner(target, store, IRunProgress.ForConsole(), TimeSpan.FromSeconds(1 / hz), s => Report.WriteSummaries(ResultSet.Load(s)));
            outcome = runner.Run(cells, cancel.Token);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"interrupted; finished cells are kept in {store.Directory} (continue with --resume)");
            return 130;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
            (target as IDisposable)?.Dispose();
        }

        var results = ResultSet.Load(store);
        if (noReport) Report.WriteData(results);
        else Report.WriteAll(results);
        Console.WriteLine($"{outcome.Ran} cell(s) run, {outcome.Skipped} already finished, {outcome.Failed} failed → {store.Directory}");
        if (!noReport) Console.WriteLine($"report: {Path.Combine(store.Directory, "report.html")}");
        return outcome.Failed == 0 ? 0 : 1;
    }

    private static void PrintMatrix(Experiment experiment, IReadOnlyList<ExperimentCell> cells)
    {
        Console.WriteLine($"experiment {experiment.Name}: {cells.Count} cell(s) on target {experiment.Target}, model {experiment.Model}");
        Console.WriteLine($"each: {experiment.Warmup} warm-up + {experiment.Generate} tokens × {experiment.Repetitions} repetition(s) × {experiment.Prompts.Count} prompt(s)");
        int w = Math.Max(4, cells.Max(c => c.Id.Length));
        Console.WriteLine($"{"#",3}  {"id".PadRight(w)}  {"budget bytes",13}  name");
        for (int i = 0; i < cells.Count; i++)
        {
            var c = cells[i];
            string budget = c.Cell.BudgetBytes is { } b ? b.ToString(CultureInfo.InvariantCulture) : "all";
            Console.WriteLine($"{i + 1,3}  {c.Id.PadRight(w)}  {budget,13}  {c.Name}{(c.IsBaseline ? "  (baseline)" : "")}");
        }
    }
}
