using System.Globalization;
using MoeLab.Harness.Results;
using ScottPlot;

namespace MoeLab.Harness.Reports;

/// <summary>One plot, saved as PNG and SVG under <c>plots/</c>.</summary>
public sealed record PlotFile(string Title, string Caption, string Png, string Svg);

/// <summary>The plots a result set supports, and the ones it could not draw with why (missing data is said, not hidden).</summary>
public sealed record PlotSet(IReadOnlyList<PlotFile> Plots, IReadOnlyList<string> NotDrawn);

/// <summary>
/// The report's plots (ScottPlot): tokens/s per cell with 95% CI error bars; hit rate vs cache size per policy
/// (Belady dashed, as the offline bound); tokens/s vs RAM budget; SSD MB/s, RSS and temperature over time;
/// per-layer hit rate (layers × cells heatmap); quality cost vs speed with the Pareto front. Each as PNG and SVG.
/// </summary>
public sealed class PlotExporter : IResultExporter
{
    private const int Width = 900;
    private const int Height = 500;

    public string Name => "plots";

    public IReadOnlyList<string> Export(ResultSet results) => Render(results).Plots.SelectMany(p => new[] { p.Png, p.Svg }).ToList();

    public PlotSet Render(ResultSet results)
    {
        string dir = Path.Combine(results.Directory, "plots");
        Directory.CreateDirectory(dir);
        var plots = new List<PlotFile>();
        var notDrawn = new List<string>();
        var rows = results.Summaries.Where(s => !double.IsNaN(s.TpsMean)).ToList();
        if (rows.Count == 0)
        {
            notDrawn.Add("every plot: no finished cell has measured tokens");
            return new PlotSet(plots, notDrawn);
        }

        plots.Add(TokensPerSecond(dir, rows));

        var sized = rows.Where(r => r.BudgetBytes > 0).ToList();
        var curves = sized.GroupBy(r => r.Cache).Where(g => g.Select(r => r.BudgetBytes).Distinct().Count() >= 2).ToList();
        if (curves.Count > 0)
        {
            plots.Add(Curve(dir, "hit_rate_vs_cache_size", "Hit rate vs cache size", "expert hit rate", sized, r => r.Cache, r => r.HitRate,
                "Expert cache hit rate per policy as the cache grows" + (sized.Any(r => r.Cache.StartsWith("belady", StringComparison.Ordinal)) ? "; Belady (dashed) is the offline optimum." : "; no Belady cell in this experiment, so no optimal bound is drawn.")));
            plots.Add(Curve(dir, "tokens_per_s_vs_budget", "Tokens/s vs RAM budget", "tokens/s", sized, r => $"{r.Cache} / {r.Prefetch}", r => r.TpsMean,
                "Mean decode speed per cache/prefetch pair against the expert cache's RAM budget."));
        }
        else
        {
            notDrawn.Add("hit rate vs cache size, tokens/s vs budget: no cache policy was run at two or more absolute budgets");
        }

        foreach (var (metric, title, unit, scale) in new[]
        {
            ("storage_read_mb_per_s", "SSD read throughput over time", "MB/s", 1.0),
            ("rss_bytes", "Resident memory over time", "RSS (MiB)", 1.0 / (1 << 20)),
            ("temperature_c", "Temperature over time", "°C", 1.0),
        })
        {
            var plot = Timeline(dir, results, metric, title, unit, scale);
            if (plot is null) notDrawn.Add($"{title}: '{metric}' was unavailable on the device(s) that ran these cells");
            else plots.Add(plot);
        }

        var layered = results.Cells.Where(c => c.Result.ExpertsByLayer.Any(l => l.Requests > 0)).ToList();
        if (layered.Count > 0) plots.Add(LayerHeatmap(dir, layered));
        else notDrawn.Add("per-layer hit-rate heatmap: no finished cell has per-layer counts (results written before targets reported them)");

        var lossy = rows.Where(r => !double.IsNaN(r.MeanKl) || !double.IsNaN(r.Top1Agreement)).ToList();
        if (lossy.Count >= 2) plots.Add(Pareto(dir, lossy));
        else notDrawn.Add("quality vs speed: fewer than two cells measured quality (set measure_quality: true and sweep a lossy axis such as routing or precision)");

        return new PlotSet(plots, notDrawn);
    }

    private static PlotFile Save(Plot plot, string dir, string name, string title, string caption)
    {
        plot.Title(title);
        string png = Path.Combine(dir, name + ".png"), svg = Path.Combine(dir, name + ".svg");
        plot.SavePng(png, Width, Height);
        plot.SaveSvg(svg, Width, Height);
        return new PlotFile(title, caption, png, svg);
    }

    private static PlotFile TokensPerSecond(string dir, List<CellSummary> rows)
    {
        var plot = new Plot();
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            double err = double.IsNaN(r.TpsCi95High) ? 0 : (r.TpsCi95High - r.TpsCi95Low) / 2;
            bars.Add(new Bar { Position = i, Value = r.TpsMean, Error = err, FillColor = r.IsBaseline ? Colors.Gray : Colors.SteelBlue });
            ticks.Add(new Tick(i, r.Name));
        }

        plot.Add.Bars(bars);
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 30;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Bottom.MinimumSize = 10 + (6.5f * Math.Min(40, rows.Max(r => r.Name.Length)));
        plot.Axes.Margins(bottom: 0);
        plot.YLabel("tokens/s (mean, 95% CI)");
        return Save(plot, dir, "tokens_per_s", "Tokens/s per cell", "Mean decode tokens/s over repetitions; error bars are 95% confidence intervals of the mean (gray: baseline).");
    }

    private static PlotFile Curve(string dir, string name, string title, string yLabel, List<CellSummary> rows, Func<CellSummary, string> series, Func<CellSummary, double> y, string caption)
    {
        var plot = new Plot();
        foreach (var g in rows.GroupBy(series).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var points = g.GroupBy(r => r.BudgetBytes).OrderBy(p => p.Key).Select(p => (X: p.Key / (double)(1 << 20), Y: p.Average(y))).Where(p => !double.IsNaN(p.Y)).ToArray();
            if (points.Length == 0) continue;
            var s = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
            s.LegendText = g.Key;
            if (g.Key.StartsWith("belady", StringComparison.Ordinal)) s.LinePattern = LinePattern.Dashed;
        }

        plot.XLabel("expert cache budget (MiB)");
        plot.YLabel(yLabel);
        plot.ShowLegend();
        return Save(plot, dir, name, title, caption);
    }

    private static PlotFile? Timeline(string dir, ResultSet results, string metric, string title, string yLabel, double scale)
    {
        var plot = new Plot();
        double offset = 0;
        bool any = false;
        foreach (var c in results.Cells)
        {
            int i = Array.IndexOf(c.Telemetry.MetricNames, metric);
            double last = c.Telemetry.Rows.Length > 0 ? c.Telemetry.Rows[^1].Seconds : 0;
            if (i >= 0)
            {
                var points = c.Telemetry.Rows.Where(r => i < r.Values.Length && r.Values[i] is { } v && !double.IsNaN(v)).Select(r => (X: offset + r.Seconds, Y: r.Values[i]!.Value * scale)).ToArray();
                if (points.Length > 0)
                {
                    var s = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
                    s.LegendText = c.Name;
                    s.MarkerSize = 2;
                    any = true;
                }
            }

            offset += last;
        }

        if (!any) return null;
        plot.XLabel("seconds (cells back to back, in the order they ran)");
        plot.YLabel(yLabel);
        if (results.Cells.Count <= 12) plot.ShowLegend();
        return Save(plot, dir, "timeline_" + metric, title, $"{title} ({metric}), sampled during each cell.");
    }

    /// <summary>Hit rate of each MoE layer (rows) in each cell (columns), cells ordered by cache policy, prefetcher, then budget.</summary>
    private static PlotFile LayerHeatmap(string dir, List<CellRecord> cells)
    {
        var ordered = cells
            .OrderBy(c => c.Cell.Cache, StringComparer.Ordinal)
            .ThenBy(c => c.Cell.Prefetch, StringComparer.Ordinal)
            .ThenBy(c => c.Cell.BudgetBytes ?? long.MaxValue)
            .ThenBy(c => c.Name, StringComparer.Ordinal)
            .ToList();
        int layers = ordered.Max(c => c.Result.ExpertsByLayer.Max(l => l.Layer)) + 1;

        // Row 0 is drawn at the top: put the deepest layer there so the y coordinate of a row is its layer.
        var rates = new double[layers, ordered.Count];
        for (int r = 0; r < layers; r++)
        {
            for (int c = 0; c < ordered.Count; c++) rates[r, c] = double.NaN;
        }

        for (int c = 0; c < ordered.Count; c++)
        {
            foreach (var l in ordered[c].Result.ExpertsByLayer) rates[layers - 1 - l.Layer, c] = l.HitRate;
        }

        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(rates);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.ManualRange = new ScottPlot.Range(0, 1);
        heatmap.Position = new CoordinateRect(0, Math.Max(1, ordered.Count - 1), 0, Math.Max(1, layers - 1));
        heatmap.RenderStrategy = new ScottPlot.Plottables.Heatmap.RenderStrategies.Rectangles(); // real vector cells in the SVG
        plot.Add.ColorBar(heatmap).Label = "hit rate";
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ordered.Select((c, i) => new Tick(i, c.Name)).ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = 30;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleLeft;
        plot.Axes.Bottom.MinimumSize = 10 + (6.5f * Math.Min(40, ordered.Max(c => c.Name.Length)));
        int step = Math.Max(1, (layers + 15) / 16);
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, layers).Where(l => l % step == 0).Select(l => new Tick(l, l.ToString(CultureInfo.InvariantCulture))).ToArray());
        plot.Grid.IsVisible = false;
        plot.YLabel("MoE layer");
        return Save(plot, dir, "layer_hit_rate", "Per-layer hit rate",
            "Expert hit rate of each MoE layer (rows, layer 0 at the bottom) in each cell (columns, ordered by cache policy, prefetcher, then budget) over the measured tokens: " +
            "demands served from RAM (cached or prefetched) / all demands of that layer, 0 (dark) to 1 (yellow); counts in layers.csv.");
    }

    private static PlotFile Pareto(string dir, List<CellSummary> rows)
    {
        bool kl = rows.Count(r => !double.IsNaN(r.MeanKl)) >= 2;
        double Cost(CellSummary r) => kl ? r.MeanKl : 1 - r.Top1Agreement;
        var points = rows.Where(r => !double.IsNaN(Cost(r))).Select(r => (X: r.TpsMean, Y: Cost(r), r.Name)).ToList();
        var plot = new Plot();
        var all = plot.Add.Scatter(points.Select(p => p.X).ToArray(), points.Select(p => p.Y).ToArray());
        all.LineWidth = 0;
        all.MarkerSize = 8;
        all.LegendText = "cells";
        foreach (var p in points) plot.Add.Text(p.Name, p.X, p.Y).LabelFontSize = 10;

        // Pareto front: faster and no worse in quality than every cell to its right.
        var front = points.OrderByDescending(p => p.X).Aggregate(new List<(double X, double Y, string Name)>(), (acc, p) =>
        {
            if (acc.Count == 0 || p.Y < acc[^1].Y) acc.Add(p);
            return acc;
        }).OrderBy(p => p.X).ToArray();
        var line = plot.Add.Scatter(front.Select(p => p.X).ToArray(), front.Select(p => p.Y).ToArray());
        line.LegendText = "Pareto front";
        line.LinePattern = LinePattern.Dashed;
        plot.XLabel("tokens/s");
        plot.YLabel(kl ? "mean KL divergence to the exact model" : "1 − top-1 agreement with the exact model");
        plot.ShowLegend();
        return Save(plot, dir, "quality_vs_speed", "Quality cost vs speed", "Each lossy cell's quality cost against its speed; the dashed line joins the cells no other cell beats on both.");
    }

    internal static string Mib(long bytes) => (bytes / (double)(1 << 20)).ToString("0.##", CultureInfo.InvariantCulture);
}
