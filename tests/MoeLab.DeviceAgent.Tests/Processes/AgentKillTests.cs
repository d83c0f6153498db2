using System.Text.RegularExpressions;
using MoeLab.Engine.Gguf;
using MoeLab.Harness.Coordinator;
using Xunit.Abstractions;

namespace MoeLab.DeviceAgent.Tests.Processes;

/// <summary>
/// A device agent process SIGKILLed in the middle of a cell: the coordinator (a real <c>moelab serve</c>) notices
/// within its lease timeout and queues the cell again; a second agent re-runs it; the harness (a real
/// <c>moelab run</c>) keeps every finished cell; killed too and resumed with <c>--resume</c>, it completes the set
/// with no duplicate cell, and every result equals a local run's.
/// </summary>
public sealed partial class AgentKillTests(ITestOutputHelper output)
{
    private const double LeaseSeconds = 3;
    private const double HeartbeatSeconds = 0.5;

    [Fact]
    [Trait("Category", "Slow")]
    public void An_agent_killed_mid_cell_loses_the_cell_within_the_lease_timeout_and_the_resumed_run_completes_without_duplicates()
    {
        using var rig = new ProcessRig("kill");
        string model = rig.Model("small.gguf", "small-qwen3moe", GgmlType.Q4_0);
        var (serve, address) = rig.Serve(LeaseSeconds, HeartbeatSeconds);
        // Cells of a few seconds each, so "mid-cell" is a wide window.
        string experiment = rig.Experiment("kill", address, model, """
            prompts: ["The expert cache"]
            generate: 300
            repetitions: 1
            threads: 1
            matrix:
              cache: [lru]
              budget: [2MiB, 4MiB, 8MiB]
              io_mode: [buffered]
            """);
        using var queue = WaitForQueue(address, rig);
        var run = rig.Start("moelab run", "run", experiment, "--results", rig.Results, "--no-report");
        var agentA = rig.Agent(address, "device-a");

        // Agent A finishes the first cell, starts the second and streams some of its tokens: then it dies.
        agentA.WaitForLine(l => Started().IsMatch(l) && agentA.CountLines(Started().IsMatch) >= 2, TimeSpan.FromMinutes(2));
        string victim = Started().Matches(agentA.Output)[1].Groups[1].Value;
        ProcessRig.WaitFor(queue, victim, s => s.TokensReceived > 0, TimeSpan.FromSeconds(60), rig.Outputs);
        agentA.Freeze();
        var killedAt = DateTime.UtcNow;
        agentA.KillNine();
        Assert.Equal(CellState.Leased, queue.Status(victim).State);

        var lost = ProcessRig.WaitFor(queue, victim, s => s.History.Length > 0, TimeSpan.FromSeconds(LeaseSeconds + 30), rig.Outputs);
        double noticed = (DateTime.UtcNow - killedAt).TotalSeconds;
        output.WriteLine($"lease timeout {LeaseSeconds} s, heartbeat {HeartbeatSeconds} s: the coordinator re-queued the cell {noticed:0.00} s after the kill");
        Assert.Equal(CellState.Pending, lost.State);
        Assert.Contains("agent-1 sent nothing for 3 s", lost.History[0]);
        // Not before the lease ran out (by the coordinator's own clock: last contact → noticed), and within the lease
        // plus the reaper's period and generous slack for a loaded machine.
        var times = Contact().Match(lost.History[0]);
        var quiet = DateTimeOffset.Parse(times.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) -
                    DateTimeOffset.Parse(times.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(quiet.TotalSeconds, LeaseSeconds, LeaseSeconds + 10);
        Assert.InRange(noticed, 0, LeaseSeconds + 10);
        Assert.Contains($"cell {victim}: attempt 1: agent agent-1 sent nothing", serve.Output);

        var store = rig.Store("kill")!;
        Assert.Single(store.LoadCells());

        // A second agent takes the re-queued cell (attempt 2) and goes on with the third.
        var agentB = rig.Agent(address, "device-b");
        var rerun = ProcessRig.WaitFor(queue, victim, s => s.IsFinished, TimeSpan.FromMinutes(2), rig.Outputs);
        Assert.Equal(CellState.Succeeded, rerun.State);
        Assert.Equal(2, rerun.Attempt);
        Assert.Equal("agent-2", rerun.AgentId);
        agentB.WaitForLine(l => Started().IsMatch(l) && agentB.CountLines(Started().IsMatch) >= 2, TimeSpan.FromMinutes(2));
        WaitUntil(() => store.LoadCells().Count == 2, TimeSpan.FromSeconds(30), rig.Outputs);

        // The harness dies too, while the third cell runs; the finished cells are on disk and stay untouched.
        run.KillNine();
        var before = Directory.GetFiles(store.CellsDirectory, "*.json").ToDictionary(f => f, File.ReadAllBytes);
        Assert.Equal(2, before.Count);

        var resumed = rig.Start("moelab run --resume", "run", experiment, "--results", rig.Results, "--no-report", "--resume");
        Assert.True(resumed.WaitForExit(TimeSpan.FromMinutes(3)) == 0, rig.Outputs());
        Assert.Contains("2 of 3 cells already finished", resumed.Output);
        Assert.Single(Directory.GetDirectories(Path.Combine(rig.Results, "kill")));
        var records = store.LoadCells();
        Assert.Equal(3, records.Count);
        Assert.Equal(3, records.Select(r => r.CellId).Distinct().Count());
        Assert.Empty(store.LoadFailures());
        foreach (var (file, bytes) in before) Assert.Equal(bytes, File.ReadAllBytes(file));
        Assert.Equal(300, records.Single(r => r.CellId == victim).Result.TokenEvents.Length);
        rig.AssertEqualsLocalRun(records);
    }

    [Fact]
    [Trait("Category", "Slow")]
    public void With_one_attempt_the_killed_agents_cell_is_recorded_failed_with_the_reason_the_rest_is_kept_and_resume_runs_it_again()
    {
        using var rig = new ProcessRig("fail");
        string model = rig.Model("small.gguf", "small-qwen3moe", GgmlType.Q4_0);
        var (_, address) = rig.Serve(LeaseSeconds, HeartbeatSeconds, maxAttempts: 1);
        string experiment = rig.Experiment("fail", address, model, """
            prompts: ["The expert cache"]
            generate: 300
            repetitions: 1
            threads: 1
            matrix:
              cache: [lru]
              budget: [2MiB, 4MiB]
              io_mode: [buffered]
            """);
        using var queue = WaitForQueue(address, rig);
        var run = rig.Start("moelab run", "run", experiment, "--results", rig.Results, "--no-report");
        var agentA = rig.Agent(address, "device-a");
        string victim = Started().Match(agentA.WaitForLine(Started().IsMatch, TimeSpan.FromMinutes(2))).Groups[1].Value;
        ProcessRig.WaitFor(queue, victim, s => s.TokensReceived > 0, TimeSpan.FromSeconds(60), rig.Outputs);
        agentA.Freeze();
        agentA.KillNine();

        var failed = ProcessRig.WaitFor(queue, victim, s => s.IsFinished, TimeSpan.FromSeconds(LeaseSeconds + 30), rig.Outputs);
        Assert.Equal(CellState.Failed, failed.State);
        Assert.Contains("failed after 1 attempts; last: attempt 1: agent agent-1 sent nothing for 3 s", failed.Error);

        // The other cell still runs (on a second agent); the run ends with one failure, recorded with the reason.
        rig.Agent(address, "device-b");
        Assert.True(run.WaitForExit(TimeSpan.FromMinutes(3)) == 1, rig.Outputs());
        var store = rig.Store("fail")!;
        var kept = store.LoadCells();
        Assert.Single(kept);
        Assert.NotEqual(victim, kept[0].CellId);
        var failure = Assert.Single(store.LoadFailures());
        Assert.Equal(victim, failure.CellId);
        Assert.Contains("sent nothing for 3 s", failure.Error);
        byte[] keptBytes = File.ReadAllBytes(store.CellPath(kept[0].CellId));

        // --resume submits the failed cell again; the coordinator gives it a fresh attempt and the set completes.
        var resumed = rig.Start("moelab run --resume", "run", experiment, "--results", rig.Results, "--no-report", "--resume");
        Assert.True(resumed.WaitForExit(TimeSpan.FromMinutes(3)) == 0, rig.Outputs());
        Assert.Contains("1 of 2 cells already finished", resumed.Output);
        var records = store.LoadCells();
        Assert.Equal(2, records.Select(r => r.CellId).Distinct().Count());
        Assert.Equal(2, records.Count);
        Assert.Empty(store.LoadFailures());
        Assert.Equal(keptBytes, File.ReadAllBytes(store.CellPath(kept[0].CellId)));
        Assert.Equal(2, queue.Status(victim).Attempt);
        rig.AssertEqualsLocalRun(records);
    }

    private static CoordinatorQueueClient WaitForQueue(Uri address, ProcessRig rig)
    {
        WaitUntil(() => File.Exists(rig.TokenFile), TimeSpan.FromSeconds(10), rig.Outputs);
        return new CoordinatorQueueClient(address, rig.Token);
    }

    internal static void WaitUntil(Func<bool> condition, TimeSpan timeout, Func<string> context)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"condition not met within {timeout.TotalSeconds} s\n{context()}");
            Thread.Sleep(50);
        }
    }

    [GeneratedRegex(@"last at (\S+), noticed at ([^)\s]+)\)")]
    private static partial Regex Contact();

    [GeneratedRegex(@"cell (\S+) \(attempt \d+\): started")]
    private static partial Regex Started();
}
