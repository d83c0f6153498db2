using System.Globalization;
using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Emulation;
using MoeLab.Engine.Gguf;
using MoeLab.Harness.Coordinator;

namespace MoeLab.DeviceAgent.Tests.Processes;

/// <summary>
/// An agent process emulating a phone with its RAM scaled down to 512 MiB, enforced by a real cgroup-v1 memory
/// limit: a cell whose budget fits runs to the end inside the limit; a cell whose budget cannot fit is refused by the
/// preflight with the figures, before it starts, and the agent lives on (no OOM kill). The cgroup is gone afterwards.
/// </summary>
public sealed class EmulatedMemoryTests
{
    private const long Limit = 512L << 20;

    [CgroupFact]
    public void Under_an_emulated_memory_limit_a_fitting_cell_completes_and_an_unfitting_one_is_refused_before_it_starts()
    {
        using var rig = new ProcessRig("cgroup");
        string model = rig.Model("tiny.gguf", "tiny-qwen3moe", GgmlType.Q8_0);
        var (_, address) = rig.Serve(leaseSeconds: 10, heartbeatSeconds: 1);
        var agent = rig.Agent(address, "phone", "--emulate", "iphone-17-pro", "--emulate-memory", "512MiB", "--max-cells", "3");
        string? group = null;
        try
        {
            agent.WaitForLine(l => l.Contains("registered with", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
            Assert.Contains($"memory limit {Limit} bytes applied", agent.Output);
            group = MemoryGroupOf(agent.Id);
            Assert.Equal($"moelab-agent-{agent.Id}", Path.GetFileName(group));
            Assert.Equal(Limit, long.Parse(File.ReadAllText(Path.Combine(group, "memory.limit_in_bytes")).Trim(), CultureInfo.InvariantCulture));

            using var queue = new CoordinatorQueueClient(address, rig.Token);
            var fits = new RunCell
            {
                CellId = "fits", Experiment = "cgroup", Model = model, Prompts = ["The expert cache"], GenerateTokens = 32, Repetitions = 2,
                BudgetBytes = 192 << 10, Threads = 1, IoMode = "buffered",
            };
            // 1 GiB of experts: fine on this 24 GiB host, impossible on the emulated 512 MiB device.
            var tooBig = fits with { CellId = "too-big", BudgetBytes = 1L << 30 };
            queue.Submit([new SubmittedCell("fits", ProcessRig.CellJson(fits)), new SubmittedCell("too-big", ProcessRig.CellJson(tooBig))]);

            var ran = ProcessRig.WaitFor(queue, "fits", c => c.IsFinished, TimeSpan.FromMinutes(2), rig.Outputs);
            Assert.True(ran.State == CellState.Succeeded, ran.Error);
            Assert.Equal(64, ran.Tokens!.Length);

            var refused = ProcessRig.WaitFor(queue, "too-big", c => c.IsFinished, TimeSpan.FromMinutes(2), rig.Outputs);
            Assert.Equal(CellState.Failed, refused.State);
            Assert.StartsWith("refused before start: cell needs about 1280 MiB", refused.Error);
            long available = long.Parse(System.Text.RegularExpressions.Regex.Match(refused.Error!, @"only (\d+) MiB is available").Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.InRange(available, 1, Limit >> 20); // the cgroup's headroom, not the host's free memory
            Assert.Empty(refused.Tokens!);

            // The fitting cell really ran inside the limit: the group's peak stayed under it and the agent was not killed.
            long peak = long.Parse(File.ReadAllText(Path.Combine(group, "memory.max_usage_in_bytes")).Trim(), CultureInfo.InvariantCulture);
            Assert.InRange(peak, 1, Limit);

            // A third cell ends the agent (--max-cells 3), which then leaves and removes its cgroup.
            queue.Submit([new SubmittedCell("last", ProcessRig.CellJson(fits with { CellId = "last", GenerateTokens = 1, Repetitions = 1 }))]);
            Assert.Equal(CellState.Succeeded, ProcessRig.WaitFor(queue, "last", c => c.IsFinished, TimeSpan.FromMinutes(2), rig.Outputs).State);
            Assert.Equal(0, agent.WaitForExit(TimeSpan.FromMinutes(1)));
            Assert.False(Directory.Exists(group), "the agent removes its cgroup when it exits");
        }
        finally
        {
            agent.Dispose();
            if (group is not null && Directory.Exists(group)) Directory.Delete(group);
        }
    }

    /// <summary>The v1 memory cgroup directory of process <paramref name="pid"/>.</summary>
    private static string MemoryGroupOf(int pid)
    {
        foreach (string line in File.ReadLines($"/proc/{pid}/cgroup"))
        {
            string[] parts = line.Split(':', 3);
            if (parts.Length == 3 && parts[1].Split(',').Contains("memory")) return "/sys/fs/cgroup/memory" + parts[2].TrimEnd('/');
        }

        throw new InvalidOperationException($"process {pid} is in no v1 memory cgroup");
    }
}

/// <summary>A test that needs to create cgroup-v1 memory groups; skipped with the reason where it cannot.</summary>
internal sealed class CgroupFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> Why = new(Probe);

    public CgroupFactAttribute()
    {
        if (Why.Value is { } why) Skip = why;
    }

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux()) return "cgroup-v1 memory limits exist on Linux only";
        if (!Directory.Exists("/sys/fs/cgroup/memory")) return "no cgroup-v1 memory controller at /sys/fs/cgroup/memory";
        string probe = Path.Combine(MemoryCgroup.CurrentGroup("memory", "/sys/fs/cgroup/memory"), $"moelab-probe-{Environment.ProcessId}");
        try
        {
            Directory.CreateDirectory(probe);
            bool usable = File.Exists(Path.Combine(probe, "memory.limit_in_bytes"));
            Directory.Delete(probe);
            return usable ? null : "the memory cgroup directory has no memory.limit_in_bytes";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"cannot create a memory cgroup here ({e.Message}); run as root on a cgroup-v1 host";
        }
    }
}
