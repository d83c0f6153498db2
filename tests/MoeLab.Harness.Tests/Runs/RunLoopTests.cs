using System.Globalization;
using MoeLab.Harness.Experiments;
using MoeLab.Harness.Reports;
using MoeLab.Harness.Results;
using MoeLab.Harness.Runs;
using MoeLab.Harness.Tests.Experiments;

namespace MoeLab.Harness.Tests.Runs;

public sealed class RunLoopTests : IDisposable
{
    private readonly TempDirectory _temp = new("moelab-run");

    internal const string Sweep = ExperimentYaml.Minimal + """

        name: loop
        generate: 12
        repetitions: 3
        matrix:
          cache: [lru]
          budget: [1MiB, 2MiB, 4MiB]
          io_mode: [direct, buffered]
        baseline: { budget: 4MiB, io_mode: direct }
        """;

    public void Dispose() => _temp.Dispose();

    /// <summary>The sweep's cells and an empty result store in a new directory of <paramref name="temp"/>.</summary>
    internal static (Experiment Experiment, IReadOnlyList<ExperimentCell> Cells, ResultStore Store) Fresh(TempDirectory temp, string yaml = Sweep)
    {
        var e = ExperimentYaml.Parse(yaml);
        var store = ResultStore.Create(temp.Fresh(), e.Name, DateTimeOffset.UtcNow);
        store.WriteManifest(Manifest.Collect(e, store.Directory));
        return (e, Matrix.Expand(e, null), store);
    }

    internal static ExperimentRunner Runner(ScriptedTarget target, ResultStore store) =>
        new(target, store, new PlainProgress(TextWriter.Null), TimeSpan.FromMilliseconds(50), s => Report.WriteData(ResultSet.Load(s)));

    [Fact]
    public void EveryCellIsWrittenOnceWithItsTokens()
    {
        var (_, cells, store) = Fresh(_temp);
        var target = new ScriptedTarget();
        var outcome = Runner(target, store).Run(cells, CancellationToken.None);
        Assert.Equal(new RunOutcome(6, 0, 0), outcome);
        var loaded = store.LoadCells();
        Assert.Equal(cells.Select(c => c.Id).Order(), loaded.Select(c => c.CellId).Order());
        Assert.All(loaded, c => Assert.Equal(3 * 12, c.Result.TokenEvents.Length));
        Assert.Single(loaded, c => c.IsBaseline);
    }

    [Fact]
    public void ResumeSkipsFinishedCellsAndNeverDuplicates()
    {
        var (_, cells, store) = Fresh(_temp);
        using var cancel = new CancellationTokenSource();
        var first = new ScriptedTarget { CancelAfter = (2, cancel) };
        Assert.Throws<OperationCanceledException>(() => Runner(first, store).Run(cells, cancel.Token));
        Assert.Equal(2, store.LoadCells().Count);

        var second = new ScriptedTarget();
        var outcome = Runner(second, store).Run(cells, CancellationToken.None);
        Assert.Equal(new RunOutcome(4, 2, 0), outcome);
        Assert.Empty(second.Ran.Intersect(first.Ran));
        var ids = store.LoadCells().Select(c => c.CellId).ToList();
        Assert.Equal(ids.Distinct().Count(), ids.Count);
        Assert.Equal(cells.Select(c => c.Id).Order(), ids.Order());

        // A third pass has nothing left to do.
        var third = new ScriptedTarget();
        Assert.Equal(new RunOutcome(0, 6, 0), Runner(third, store).Run(cells, CancellationToken.None));
        Assert.Empty(third.Ran);
    }

    [Fact]
    public void AFailedCellIsRecordedAndRunAgainOnResume()
    {
        var (_, cells, store) = Fresh(_temp);
        var target = new ScriptedTarget();
        target.FailOn.Add(cells[1].Id);
        Assert.Equal(new RunOutcome(5, 0, 1), Runner(target, store).Run(cells, CancellationToken.None));
        var failure = Assert.Single(store.LoadFailures());
        Assert.Contains("scripted failure", failure.Error);

        var retry = new ScriptedTarget();
        Assert.Equal(new RunOutcome(1, 5, 0), Runner(retry, store).Run(cells, CancellationToken.None));
        Assert.Empty(store.LoadFailures());
        Assert.Equal(6, store.LoadCells().Count);
    }

    [Fact]
    public void AFinishedCellIsNeverOverwritten()
    {
        var (_, cells, store) = Fresh(_temp);
        Runner(new ScriptedTarget(), store).Run(cells.Take(1).ToList(), CancellationToken.None);
        var record = store.LoadCells().Single();
        Assert.False(store.WriteCell(record with { Name = "changed" }));
        Assert.Equal(record.Name, store.LoadCells().Single().Name);
        Assert.Empty(Directory.GetFiles(store.CellsDirectory, "*.tmp"));
    }

    [Fact]
    public void SummaryEqualsWhatTokensCsvRecomputes()
    {
        var (_, cells, store) = Fresh(_temp);
        Runner(new ScriptedTarget(), store).Run(cells, CancellationToken.None);
        var results = ResultSet.Load(store);
        Report.WriteData(results);
        ResultChecks.SummaryMatchesTokensCsv(store.Directory, cells.Count);
    }

    [Fact]
    public void HostTelemetryIsSampledAndUnavailableValuesAreMarked()
    {
        var (_, cells, store) = Fresh(_temp);
        Runner(new ScriptedTarget(), store).Run(cells.Take(1).ToList(), CancellationToken.None);
        var cell = store.LoadCells().Single();
        Assert.Contains("tokens_per_s", cell.Telemetry.MetricNames);
        Assert.Contains("rss_bytes", cell.Telemetry.MetricNames);
        Assert.True(cell.Telemetry.Rows.Length >= 2);
        Report.WriteData(ResultSet.Load(store));
        var lines = File.ReadAllLines(Path.Combine(store.Directory, "telemetry.csv"));
        Assert.StartsWith("cell_id,seconds,tokens_per_s", lines[0]);
        Assert.True(lines.Length >= 3);
    }
}
