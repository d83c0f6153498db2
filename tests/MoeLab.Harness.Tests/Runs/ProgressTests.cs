using MoeLab.Harness.Results;
using MoeLab.Harness.Runs;
using Spectre.Console;

namespace MoeLab.Harness.Tests.Runs;

public sealed class ProgressTests : IDisposable
{
    private readonly TempDirectory _temp = new("moelab-progress");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void TheLiveLineShowsCellsDoneOfTotalCurrentTokensPerSecondAndEta()
    {
        var (_, cells, _) = RunLoopTests.Fresh(_temp);
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No, Out = new AnsiConsoleOutput(output),
        });
        var progress = new LiveProgress(console);
        var seen = new List<string>();
        progress.Wrap(3, () =>
        {
            progress.Skipped(cells[0]);
            progress.CellStarted(cells[1], 2, 3);
            progress.Token(12.5);
            seen.Add(progress.Status);
            progress.CellFinished(cells[1], new CellSummary
            {
                CellId = cells[1].Id, Name = cells[1].Name, Target = "t", Source = "s", Model = "m", Cache = "lru", Budget = "1MiB",
                Prefetch = "none", Precision = "native", Routing = "unchanged", IoMode = "direct", Io = "fifo", TpsMean = 12.5, HitRate = 0.75,
            }, null);
            progress.CellStarted(cells[2], 3, 3);
            seen.Add(progress.Status);
            return 0;
        });

        // Before any cell ran there is no basis for an ETA; after one, there is (one cell left at the rate so far).
        Assert.Equal($"[1/3] {cells[1].Name}: 12.5 tok/s, ETA —", seen[0]);
        Assert.Matches(@"^\[2/3\] .+: …, ETA \d\d:\d\d:\d\d$", seen[1]);
        string text = output.ToString();
        Assert.Contains($"✓ {cells[1].Name}: 12.5 tokens/s, hit rate 0.75", text);
    }
}
