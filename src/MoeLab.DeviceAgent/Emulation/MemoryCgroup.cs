using System.Globalization;
using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Telemetry;

namespace MoeLab.DeviceAgent.Emulation;

/// <summary>
/// Puts this process under a cgroup-v1 memory limit (which counts page cache too, so buffered I/O cannot borrow the
/// host's RAM) and, where the kernel allows, a blkio read-bandwidth limit on the models' disk. What was really
/// applied is reported, never assumed.
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
                string dir = Path.Combine(MemoryRoot, group);
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
                    string dir = Path.Combine(BlkioRoot, group);
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
