using MoeLab.Harness.Experiments;
using MoeLab.Harness.Reports;
using MoeLab.Harness.Results;
using MoeLab.Harness.Runs;
using MoeLab.Harness.Tests.Experiments;
using MoeLab.Harness.Tests.Runs;

namespace MoeLab.Harness.Tests.Reports;

/// <summary>
/// A tiny experiment through the real engine (a synthesized 2-layer model, streamed under two budgets and resident),
/// then every results file and plot the issue lists, checked against figures recomputed from the CSVs.
/// </summary>
public sealed class EndToEndTests : IDisposable
{
    private readonly TempDirectory _temp = new("moelab-e2e");

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void ATinyExperimentOnTheRealEngineWritesEveryFileAndPlotWithConsistentNumbers()
    {
        var experiment = ExperimentYaml.Parse(ExperimentYaml.Minimal + """

            name: e2e
            generate: 8
            warmup: 2
            repetitions: 2
            matrix:
              cache: [lru]
              budget: [all, 40KiB, 48KiB]  # the tiny model: 16 experts of 3456 bytes in 4 KiB buffers, 8 of them working buffers
              io_mode: [buffered]
            baseline: { budget: all }
            """);
        var store = ResultStore.Create(_temp.Fresh(), experiment.Name, DateTimeOffset.UtcNow);
        store.WriteManifest(Manifest.Collect(experiment, store.Directory));
        var cells = Matrix.Expand(experiment, null);
        var target = new LocalTarget(_temp.Fresh());
        var outcome = new ExperimentRunner(target, store, new PlainProgress(TextWriter.Null), TimeSpan.FromMilliseconds(50), s => Report.WriteSummaries(ResultSet.Load(s)))
            .Run(cells, CancellationToken.None);
        Assert.True(outcome == new RunOutcome(3, 0, 0), string.Join("; ", store.LoadFailures().Select(f => f.Error)));
        var files = Report.WriteAll(ResultSet.Load(store));

        string dir = store.Directory;
        foreach (string name in new[] { "manifest.json", "summary.csv", "summary.json", "summary.md", "tokens.csv", "telemetry.csv", "layers.csv", "report.md", "report.html" })
            Assert.True(File.Exists(Path.Combine(dir, name)), name);
        string md = File.ReadAllText(Path.Combine(dir, "report.md"));
        string html = File.ReadAllText(Path.Combine(dir, "report.html"));
        var pngs = files.Where(f => f.EndsWith(".png", StringComparison.Ordinal)).ToList();
        foreach (string plot in new[] { "tokens_per_s", "hit_rate_vs_cache_size", "tokens_per_s_vs_budget", "layer_hit_rate" })
            Assert.Contains(Path.Combine(dir, "plots", plot + ".png"), pngs);
        foreach (string png in pngs)
        {
            string svg = Path.ChangeExtension(png, ".svg");
            Assert.True(new FileInfo(png).Length > 1000 && new FileInfo(svg).Length > 1000, png);
            Assert.Contains($"](plots/{Path.GetFileName(png)})", md);
            Assert.Contains($"(plots/{Path.GetFileName(svg)})", md);
        }

        Assert.Equal(pngs.Count, html.Split("data:image/png;base64,").Length - 1);

        // The numbers: summary from tokens.csv, per-layer counts summing to the cells' totals, and really streamed.
        ResultChecks.SummaryMatchesTokensCsv(dir, 3);
        ResultChecks.LayersSumToSummary(dir, 2);
        var summaries = ResultSet.Load(dir).Summaries;
        Assert.Equal(1.0, summaries.Single(s => s.BudgetBytes < 0).HitRate);
        Assert.All(summaries.Where(s => s.BudgetBytes > 0), s => Assert.True(s.Misses > 0 && s.BytesRead > 0, s.Name));

        // `moelab report DIR` regenerates the same report from the files alone.
        File.Delete(Path.Combine(dir, "report.md"));
        Directory.Delete(Path.Combine(dir, "plots"), true);
        Report.WriteAll(ResultSet.Load(dir));
        Assert.Equal(md, File.ReadAllText(Path.Combine(dir, "report.md")));
        Assert.True(File.Exists(Path.Combine(dir, "plots", "layer_hit_rate.svg")));
    }
}
