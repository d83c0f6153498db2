using System.Globalization;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Cli;

/// <summary>
/// <c>moelab compare A B</c>: lines up two result sets cell by cell (by id, else by name) and prints tokens/s and
/// hit rate of each with B/A ratios, plus cells only one side has.
/// </summary>
public sealed class CompareCommand : ICliCommand
{
    public string Name => "compare";

    public string Summary => "diff two result sets: tokens/s and hit rate per cell, with ratios";

    public string Usage => "usage: moelab compare RESULTS_A RESULTS_B [--markdown]";

    public int Run(CliArgs args)
    {
        bool markdown = args.Flag("markdown");
        args.EnsureAllUsed();
        if (args.Positional.Count != 2) throw new CliUsageException("give two results directories");
        var a = ResultSet.Load(args.Positional[0]);
        var b = ResultSet.Load(args.Positional[1]);
        Console.Write(Diff(a, b, markdown));
        return 0;
    }

    public static string Diff(ResultSet a, ResultSet b, bool markdown)
    {
        static string F(double v, string f) => double.IsNaN(v) ? "—" : v.ToString(f, CultureInfo.InvariantCulture);
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"A: {a.Directory} ({a.Manifest.Experiment}, {a.Manifest.GitCommit[..Math.Min(12, a.Manifest.GitCommit.Length)]}, {a.Manifest.CpuModel})");
        sb.AppendLine($"B: {b.Directory} ({b.Manifest.Experiment}, {b.Manifest.GitCommit[..Math.Min(12, b.Manifest.GitCommit.Length)]}, {b.Manifest.CpuModel})");
        var rows = new List<string[]>();
        var matchedB = new HashSet<string>();
        foreach (var sa in a.Summaries)
        {
            var sb2 = b.Summaries.FirstOrDefault(x => x.CellId == sa.CellId) ?? b.Summaries.FirstOrDefault(x => x.Name == sa.Name);
            if (sb2 is null)
            {
                rows.Add([sa.Name, F(sa.TpsMean, "0.00"), "—", "—", F(sa.HitRate, "0.000"), "—", "only in A"]);
                continue;
            }

            matchedB.Add(sb2.CellId);
            var (ratio, low, high) = Described.Of(sb2.TpsPerRepetition).RatioTo(Described.Of(sa.TpsPerRepetition));
            string note = sa.CellId == sb2.CellId ? "" : "matched by name (configuration differs)";
            if (!double.IsNaN(low) && (low > 1 || high < 1)) note = (note + " significant").Trim();
            rows.Add([sa.Name, F(sa.TpsMean, "0.00"), F(sb2.TpsMean, "0.00"), F(ratio, "0.000") + (double.IsNaN(low) ? "" : $" [{F(low, "0.000")}, {F(high, "0.000")}]"), F(sa.HitRate, "0.000"), F(sb2.HitRate, "0.000"), note]);
        }

        foreach (var sb2 in b.Summaries.Where(x => !matchedB.Contains(x.CellId)))
            rows.Add([sb2.Name, "—", F(sb2.TpsMean, "0.00"), "—", "—", F(sb2.HitRate, "0.000"), "only in B"]);

        string[] header = ["cell", "A t/s", "B t/s", "B/A (95% CI)", "A hit rate", "B hit rate", "note"];
        if (markdown)
        {
            sb.AppendLine("| " + string.Join(" | ", header) + " |");
            sb.AppendLine("|" + string.Concat(Enumerable.Repeat(" --- |", header.Length)));
            foreach (var r in rows) sb.AppendLine("| " + string.Join(" | ", r) + " |");
        }
        else
        {
            var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
            sb.AppendLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))));
            foreach (var r in rows) sb.AppendLine(string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        }

        return sb.ToString();
    }
}
