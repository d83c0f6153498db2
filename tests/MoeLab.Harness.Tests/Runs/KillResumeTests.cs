using System.Diagnostics;
using MoeLab.Harness.Results;
using MoeLab.Harness.Traces;

namespace MoeLab.Harness.Tests.Runs;

/// <summary>
/// The real CLI, killed with SIGKILL after its first cell is on disk, then <c>--resume</c>d: the result set ends
/// complete, with no duplicate cell, the cells finished before the kill untouched, and every figure equal to an
/// uninterrupted run's (the sim target is deterministic).
/// </summary>
public sealed class KillResumeTests
{
    [Fact]
    [Trait("Category", "Slow")]
    public void KillNineHalfwayThenResumeGivesTheCompleteSetWithoutDuplicates()
    {
        string repo = RepoRoot();
        using var temp = new TempDirectory("moelab-kill");
        string work = temp.Path;
        var trace = SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 32, Experts = 8, ExpertsPerToken = 2, Tokens = 2100, Seed = 7, Model = "mixtral-8x7b" });
        TraceFiles.Save(trace, Path.Combine(work, "trace.moelab"));
        string budgets = string.Join(", ", Enumerable.Range(1, 16).Select(i => $"{i}GiB"));
        File.WriteAllText(Path.Combine(work, "kill.yaml"), $"""
            name: kill
            model: {"{"} preset: mixtral-8x7b {"}"}
            target: sim:iphone-17-pro
            trace: {"{"} path: trace.moelab, format: moelab {"}"}
            prompts: ["trace replay"]
            generate: 2000
            warmup: 10
            repetitions: 4
            matrix:
              cache: [lru, fifo]
              budget: [{budgets}]
            """);
        const int total = 32;

        string killed = Path.Combine(work, "killed"), clean = Path.Combine(work, "clean");
        Directory.CreateDirectory(killed);
        using (var firstCell = new ManualResetEventSlim())
        using (var watcher = new FileSystemWatcher(killed) { IncludeSubdirectories = true, EnableRaisingEvents = true })
        {
            // The cell file appears by rename; freeze the process the moment it does (SIGSTOP), then SIGKILL it.
            watcher.Renamed += (_, e) =>
            {
                if (e.FullPath.Contains($"{Path.DirectorySeparatorChar}cells{Path.DirectorySeparatorChar}", StringComparison.Ordinal) && e.FullPath.EndsWith(".json", StringComparison.Ordinal)) firstCell.Set();
            };
            using var p = Start(repo, work, "run", "kill.yaml", "--results", killed, "--no-report");
            while (!p.HasExited && !firstCell.Wait(5)) { }
            if (!p.HasExited) _ = Kill(p.Id, SigStop);
            if (p.HasExited) Assert.Fail("the run finished before it could be killed: " + p.StandardError.ReadToEnd());
            p.Kill(); // SIGKILL: no handler, no cleanup
            p.WaitForExit();
        }

        var before = CellFiles(killed).ToDictionary(f => f, File.ReadAllBytes);
        Assert.InRange(before.Count, 1, total - 1);
        foreach (var f in before.Keys) Assert.NotNull(System.Text.Json.JsonSerializer.Deserialize(File.ReadAllBytes(f), ResultsJson.Default.CellRecord));

        Assert.Equal(0, RunToEnd(repo, work, "run", "kill.yaml", "--results", killed, "--resume"));
        var dirs = Directory.GetDirectories(Path.Combine(killed, "kill"));
        Assert.Single(dirs);
        var after = CellFiles(killed);
        Assert.Equal(total, after.Length);
        foreach (var (file, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(file));
        var resumed = ResultSet.Load(dirs[0]);
        Assert.Equal(total, resumed.Summaries.Select(s => s.CellId).Distinct().Count());
        ResultChecks.SummaryMatchesTokensCsv(dirs[0], total);
        ResultChecks.LayersSumToSummary(dirs[0], 32);
        foreach (string name in new[] { "report.md", "report.html", "plots/tokens_per_s.png", "plots/hit_rate_vs_cache_size.svg", "plots/layer_hit_rate.svg", "layers.csv" })
            Assert.True(File.Exists(Path.Combine(dirs[0], name)), name);

        Assert.Equal(0, RunToEnd(repo, work, "run", "kill.yaml", "--results", clean, "--no-report"));
        var reference = ResultSet.Load(Directory.GetDirectories(Path.Combine(clean, "kill")).Single());
        Assert.Equal(
            reference.Summaries.OrderBy(s => s.CellId).Select(s => (s.CellId, s.TpsMean, s.HitRate, s.BytesRead)),
            resumed.Summaries.OrderBy(s => s.CellId).Select(s => (s.CellId, s.TpsMean, s.HitRate, s.BytesRead)));
        Assert.Equal(
            reference.Cells.OrderBy(c => c.CellId).SelectMany(c => c.Result.ExpertsByLayer.Select(l => (c.CellId, l.Layer, l.Hits, l.Misses, l.PrefetchHits))),
            resumed.Cells.OrderBy(c => c.CellId).SelectMany(c => c.Result.ExpertsByLayer.Select(l => (c.CellId, l.Layer, l.Hits, l.Misses, l.PrefetchHits))));
    }

    private const int SigStop = 19;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    private static string[] CellFiles(string root) =>
        Directory.Exists(root)
            ? Directory.GetFiles(root, "*.json", SearchOption.AllDirectories).Where(f => Path.GetFileName(Path.GetDirectoryName(f)) == "cells" && !f.EndsWith(".failed.json", StringComparison.Ordinal)).Order().ToArray()
            : [];

    private static Process Start(string repo, string work, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = work, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "moelab.dll"));
        foreach (string a in args) psi.ArgumentList.Add(a);

        // Device profiles are found under experiments/devices from the working directory upwards; point at the checkout's.
        Directory.CreateDirectory(Path.Combine(work, "experiments"));
        if (!Directory.Exists(Path.Combine(work, "experiments", "devices")))
            Directory.CreateSymbolicLink(Path.Combine(work, "experiments", "devices"), Path.Combine(repo, "experiments", "devices"));
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        return p;
    }

    private static int RunToEnd(string repo, string work, params string[] args)
    {
        using var p = Start(repo, work, args);
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, err);
        return p.ExitCode;
    }

    internal static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "MoeLab.sln"))) return d.FullName;
        }

        throw new DirectoryNotFoundException("MoeLab.sln not found above the test binaries");
    }
}
