using System.Globalization;
using MoeLab.Harness.Reports;
using MoeLab.Harness.Results;
using MoeLab.Harness.Tests.Runs;

namespace MoeLab.Harness.Tests.Reports;

public sealed class ReportTests : IDisposable
{
    private readonly TempDirectory _temp = new("moelab-report");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void EveryReportFileAndPlotExists()
    {
        var (_, cells, store) = RunLoopTests.Fresh(_temp);
        RunLoopTests.Runner(new ScriptedTarget(), store).Run(cells, CancellationToken.None);
        var results = ResultSet.Load(store);
        var files = Report.WriteAll(results);
        foreach (string name in new[] { "manifest.json", "summary.csv", "summary.json", "tokens.csv", "telemetry.csv", "layers.csv", "summary.md", "report.md", "report.html" })
            Assert.True(File.Exists(Path.Combine(store.Directory, name)), name);
        foreach (string plot in new[] { "tokens_per_s", "hit_rate_vs_cache_size", "tokens_per_s_vs_budget", "timeline_rss_bytes", "layer_hit_rate" })
        {
            foreach (string ext in new[] { ".png", ".svg" })
            {
                string path = Path.Combine(store.Directory, "plots", plot + ext);
                Assert.True(File.Exists(path) && new FileInfo(path).Length > 1000, path);
                Assert.Contains(path, files);
            }
        }

        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(store.Directory, "plots", "tokens_per_s.png")).Take(4));
        string html = File.ReadAllText(Path.Combine(store.Directory, "report.html"));
        Assert.Contains("data:image/png;base64,", html);
        Assert.DoesNotContain("src=\"plots/", html);
        string md = File.ReadAllText(Path.Combine(store.Directory, "report.md"));
        Assert.Contains("![Tokens/s per cell](plots/tokens_per_s.png)", md);
        Assert.Contains("![Per-layer hit rate](plots/layer_hit_rate.png)", md);
        Assert.Contains("Expert hit rate of each MoE layer (rows, layer 0 at the bottom) in each cell", md);
        Assert.DoesNotContain("per-layer hit-rate heatmap", md); // drawn, so not listed as missing
        Assert.Contains("<h3>Per-layer hit rate</h3>", html);
        Assert.Contains("<rect", File.ReadAllText(Path.Combine(store.Directory, "plots", "layer_hit_rate.svg")));
        ResultChecks.LayersSumToSummary(store.Directory, 4);
        Assert.Contains("1.00 (baseline)", md);
    }

    [Fact]
    public void WithoutPerLayerCountsTheHeatmapIsListedAsNotDrawn()
    {
        // Cells written before targets reported per-layer counts (or by a target that cannot) load without them.
        var (_, cells, store) = RunLoopTests.Fresh(_temp);
        RunLoopTests.Runner(new ScriptedTarget(), store).Run(cells.Take(2).ToList(), CancellationToken.None);
        var old = ResultStore.Create(Path.GetDirectoryName(Path.GetDirectoryName(store.Directory))!, "old", DateTimeOffset.UtcNow);
        old.WriteManifest(store.ReadManifest());
        foreach (var c in store.LoadCells()) old.WriteCell(c with { Result = c.Result with { ExpertsByLayer = [] } });
        Report.WriteAll(ResultSet.Load(old.Directory));
        Assert.False(File.Exists(Path.Combine(old.Directory, "plots", "layer_hit_rate.png")));
        Assert.Contains("per-layer hit-rate heatmap: no finished cell has per-layer counts", File.ReadAllText(Path.Combine(old.Directory, "report.md")));
        Assert.Single(File.ReadAllLines(Path.Combine(old.Directory, "layers.csv"))); // the header only
    }

    [Fact]
    public void ExportersWriteInvariantNumbersUnderACommaDecimalCulture()
    {
        var (_, cells, store) = RunLoopTests.Fresh(_temp);
        RunLoopTests.Runner(new ScriptedTarget(), store).Run(cells.Take(2).ToList(), CancellationToken.None);
        var saved = CultureInfo.CurrentCulture;
        var comma = (CultureInfo)CultureInfo.InvariantCulture.Clone();
        comma.NumberFormat.NumberDecimalSeparator = ",";
        comma.NumberFormat.NumberGroupSeparator = ".";
        try
        {
            CultureInfo.CurrentCulture = comma;
            Report.WriteAll(ResultSet.Load(store));
        }
        finally
        {
            CultureInfo.CurrentCulture = saved;
        }

        ResultChecks.SummaryMatchesTokensCsv(store.Directory, 2);
        Assert.Matches(@"\| \d+\.\d\d ± \d+\.\d\d \|", File.ReadAllText(Path.Combine(store.Directory, "summary.md")));
    }

    [Fact]
    public void StatisticsMatchHandComputedValues()
    {
        // 10, 12, 14: mean 12, sd 2, t(0.975, 2) = 4.302652…, half-width = 4.302652 * 2 / √3.
        var d = Described.Of([10, 12, 14]);
        Assert.Equal(12, d.Mean, 12);
        Assert.Equal(12, d.Median, 12);
        Assert.Equal(2, d.StdDev, 12);
        Assert.Equal(12 - (4.302652729911275 * 2 / Math.Sqrt(3)), d.Ci95Low, 9);
        Assert.Equal(0, d.Outliers);
        Assert.Equal(1, Described.Of([10, 10, 10, 10, 10, 11, 100]).Outliers);
        var (ratio, low, high) = Described.Of([20, 24, 28]).RatioTo(d);
        Assert.Equal(2, ratio, 12);
        Assert.True(low < 2 && high > 2);
        Assert.True(double.IsNaN(Described.Of([5]).Ci95Low));
    }

    [Fact]
    public void CompareLinesUpCellsById()
    {
        var (_, cells, a) = RunLoopTests.Fresh(_temp);
        RunLoopTests.Runner(new ScriptedTarget(), a).Run(cells, CancellationToken.None);
        var (_, _, b) = RunLoopTests.Fresh(_temp);
        RunLoopTests.Runner(new ScriptedTarget(), b).Run(cells.Skip(1).ToList(), CancellationToken.None);
        string diff = MoeLab.Harness.Cli.CompareCommand.Diff(ResultSet.Load(a), ResultSet.Load(b), markdown: true);
        Assert.Contains("only in A", diff);
        Assert.Contains("| " + cells[1].Name + " |", diff);
        Assert.Contains("1.000", diff); // the scripted target is deterministic per cell: identical cells give ratio 1
    }
}
