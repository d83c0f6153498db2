using MoeLab.Harness.Results;
using MoeLab.Harness.Tests.Runs;

namespace MoeLab.Harness.Tests.Results;

public sealed class ResultStoreTests : IDisposable
{
    private readonly TempDirectory _temp = new("moelab-store");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void RefreshingAfterEachOfManyCellsParsesEachCellFileOnce()
    {
        var (_, cells, store) = RunLoopTests.Fresh(_temp);
        RunLoopTests.Runner(new ScriptedTarget(), store).Run(cells.Take(1).ToList(), CancellationToken.None);
        var template = store.LoadCells().Single();
        const int n = 300;
        var start = template.Finished;
        for (int i = 0; i < n; i++)
        {
            // Distinct ids and finish times; the tokens of the template, so summaries are real ones.
            var record = template with { CellId = $"c{i:D4}", Name = $"cell {i}", IsBaseline = false, Finished = start.AddSeconds(n - i) };
            Assert.True(store.WriteCell(record));
            var set = ResultSet.Load(store);
            Assert.Equal(i + 2, set.Cells.Count);
        }

        // Its own writes are never parsed back, whatever the number of refreshes.
        Assert.Equal(0, store.ParsedCellFiles);

        // A second store over the same directory (e.g. `moelab report`) parses each file once, then nothing new.
        var other = ResultStore.Open(store.Directory);
        var first = ResultSet.Load(other);
        Assert.Equal(n + 1, other.ParsedCellFiles);
        var again = ResultSet.Load(other);
        Assert.Equal(n + 1, other.ParsedCellFiles);

        // Same cells, same order (by finish time), same summaries as the writing store's view.
        var mine = ResultSet.Load(store);
        Assert.Equal(mine.Cells.Select(c => c.CellId), first.Cells.Select(c => c.CellId));
        Assert.Equal(first.Cells.Select(c => c.CellId), again.Cells.Select(c => c.CellId));
        Assert.Equal(first.Cells.Select(c => c.Finished), first.Cells.Select(c => c.Finished).Order());
        Assert.Equal(mine.Summaries.Select(s => (s.CellId, s.TpsMean, s.HitRate, s.BytesRead)), first.Summaries.Select(s => (s.CellId, s.TpsMean, s.HitRate, s.BytesRead)));
        Assert.Equal(n + 1, first.Summaries.Select(s => s.CellId).Distinct().Count());

        // A cell file deleted on disk (to run that cell again) drops out of the next load.
        File.Delete(store.CellPath("c0007"));
        Assert.DoesNotContain(ResultSet.Load(other).Cells, c => c.CellId == "c0007");
        Assert.Equal(n, ResultSet.Load(store).Cells.Count);
    }

    [Fact]
    public void BaselineRatiosFollowANewlyFinishedBaseline()
    {
        var (_, cells, store) = RunLoopTests.Fresh(_temp);
        var baseline = cells.Single(c => c.IsBaseline);
        var others = cells.Where(c => !c.IsBaseline).ToList();
        RunLoopTests.Runner(new ScriptedTarget(), store).Run(others, CancellationToken.None);
        Assert.All(ResultSet.Load(store).Summaries, s => Assert.True(double.IsNaN(s.RatioToBaseline)));
        RunLoopTests.Runner(new ScriptedTarget(), store).Run([baseline], CancellationToken.None);
        var set = ResultSet.Load(store);
        Assert.Equal(1.0, set.Baseline!.RatioToBaseline, 12);
        Assert.All(set.Summaries, s => Assert.False(double.IsNaN(s.RatioToBaseline)));
    }
}
