using System.Globalization;
using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Telemetry;

namespace MoeLab.DeviceAgent.Emulation;

/// <summary>
/// Puts this process under a cgroup-v1 memory limit (which counts page cache too, so buffered I/O cannot borrow the
/// host's RAM) and, where the kernel allows, a blkio read-bandwidth limit on the models' disk. What was really
/// applied is reported, never assumed. The group is a child of the cgroup the agent starts in (so a limit set by
/// whoever started it still applies) and is named <c>moelab-agent-PID</c>; <see cref="Leave"/> removes it.
/// </summary>
public static class MemoryCgroup
{
    private const string MemoryRoot = "/sys/fs/cgroup/memory";
    private const string BlkioRoot = "/sys/fs/cgroup/blkio";

    public static EmulationReport Apply(EmulationProfile profile, string modelsDirectory)
    {
        var notes = new List<string>();
        bool memoryApplied = false;
        bool readApplied = false;
        string group = $"moelab-agent-{Environment.ProcessId}";
        if (!OperatingSystem.IsLinux() || !Directory.Exists(MemoryRoot))
        {
            notes.Add("no cgroup-v1 memory controller: the limit is enforced only by the preflight check");
        }
        else
        {
            try
            {
                string dir = Path.Combine(CurrentGroup("memory", MemoryRoot), group);
                Directory.CreateDirectory(dir);
                File.WriteAllText(Path.Combine(dir, "memory.limit_in_bytes"), profile.MemoryBytes.ToString(CultureInfo.InvariantCulture));
                // No swap on a phone: make the limit hard where the kernel has memsw accounting.
                TryWrite(Path.Combine(dir, "memory.memsw.limit_in_bytes"), profile.MemoryBytes.ToString(CultureInfo.InvariantCulture));
                File.WriteAllText(Path.Combine(dir, "cgroup.procs"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
                memoryApplied = CgroupMemory.Directory() == dir;
                if (!memoryApplied) notes.Add("the memory cgroup was created but the process is not in it");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                notes.Add("memory cgroup not applied: " + e.Message);
            }
        }

        if (profile.ReadBytesPerSecond is long bps)
        {
            string? device = BlockDevice(modelsDirectory);
            if (device is null || !Directory.Exists(BlkioRoot))
            {
                notes.Add("read-bandwidth limit not applied: no blkio controller or no block device for the models directory");
            }
            else
            {
                try
                {
                    string dir = Path.Combine(CurrentGroup("blkio", BlkioRoot), group);
                    Directory.CreateDirectory(dir);
                    File.WriteAllText(Path.Combine(dir, "blkio.throttle.read_bps_device"), $"{device} {bps}");
                    File.WriteAllText(Path.Combine(dir, "cgroup.procs"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
                    readApplied = true;
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    notes.Add("read-bandwidth limit not applied: " + e.Message);
                }
            }
        }

        return new EmulationReport(profile.Name, profile.MemoryBytes, memoryApplied, profile.ReadBytesPerSecond, readApplied, string.Join("; ", notes));
    }

    /// <summary>
    /// Moves this process back to the parent groups and removes the groups <see cref="Apply"/> made, so a finished
    /// agent leaves no cgroup behind. (A killed one cannot: whoever killed it removes <c>moelab-agent-PID</c>.)
    /// </summary>
    public static void Leave()
    {
        foreach (var (controller, root) in new[] { ("memory", MemoryRoot), ("blkio", BlkioRoot) })
        {
            string current = CurrentGroup(controller, root);
            if (Path.GetFileName(current) != $"moelab-agent-{Environment.ProcessId}") continue;
            try
            {
                File.WriteAllText(Path.Combine(Path.GetDirectoryName(current)!, "cgroup.procs"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
                Directory.Delete(current);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Best effort: the group is empty once the process exits and can be removed then.
            }
        }
    }

    /// <summary>The v1 cgroup directory of this process for <paramref name="controller"/>, or the root when unknown.</summary>
    internal static string CurrentGroup(string controller, string root)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/cgroup"))
            {
                string[] parts = line.Split(':', 3);
                if (parts.Length == 3 && parts[1].Split(',').Contains(controller))
                {
                    string dir = root + parts[2].TrimEnd('/');
                    return Directory.Exists(dir) ? dir : root;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }

        return root;
    }

    /// <summary>"major:minor" of the block device holding <paramref name="path"/>, from /proc/self/mountinfo.</summary>
    public static string? BlockDevice(string path)
    {
        try
        {
            string full = Path.GetFullPath(path);
            string? best = null;
            int bestLength = -1;
            foreach (string line in File.ReadLines("/proc/self/mountinfo"))
            {
                string[] f = line.Split(' ');
                if (f.Length < 5) continue;
                string mount = f[4];
                if ((full == mount || full.StartsWith(mount.TrimEnd('/') + "/", StringComparison.Ordinal)) && mount.Length > bestLength)
                {
                    best = f[2];
                    bestLength = mount.Length;
                }
            }

            return best is null || best.StartsWith("0:", StringComparison.Ordinal) ? null : best;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static void TryWrite(string path, string value)
    {
        try
        {
            if (File.Exists(path)) File.WriteAllText(path, value);
        }
        catch (IOException)
        {
        }
    }
}
