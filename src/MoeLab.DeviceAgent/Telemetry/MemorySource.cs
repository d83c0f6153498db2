namespace MoeLab.DeviceAgent.Telemetry;

/// <summary>Process resident set (current and peak) and the memory the OS says is still available.</summary>
public sealed class MemorySource : ITelemetrySource
{
    private static readonly string[] StatusKeys = ["VmRSS", "VmHWM"];
    private readonly long?[] _status = new long?[2];

    public string Name => "memory";

    public IReadOnlyList<string> Metrics { get; } = ["rss_bytes", "peak_rss_bytes", "available_memory_bytes"];

    public string? Unavailable =>
        OperatingSystem.IsLinux() || AppleSystem.IsApple ? null : "no memory source for this OS";

    public void Sample(Span<double> values, double elapsedSeconds)
    {
        values.Fill(double.NaN);
        if (OperatingSystem.IsLinux())
        {
            ProcFiles.ReadValues("/proc/self/status", StatusKeys, _status);
            values[0] = Kib(_status[0]);
            values[1] = Kib(_status[1]);
            values[2] = Kib(ProcFiles.ReadValue("/proc/meminfo", "MemAvailable"));
            double cgroupFree = CgroupMemory.AvailableBytes();
            if (!double.IsNaN(cgroupFree) && (double.IsNaN(values[2]) || cgroupFree < values[2])) values[2] = cgroupFree;
        }
        else if (AppleSystem.IsApple)
        {
            values[0] = Environment.WorkingSet;
            values[2] = AppleSystem.AvailableMemoryBytes();
        }
    }

    private static double Kib(long? kib) => kib is long v ? v * 1024.0 : double.NaN;
}

/// <summary>The memory cgroup (v1) the process runs in, when it has a limit: what an emulated device leaves free.</summary>
public static class CgroupMemory
{
    /// <summary>limit − usage of this process's memory cgroup, or NaN when there is no cgroup limit to speak of.</summary>
    public static double AvailableBytes()
    {
        string? dir = Directory();
        if (dir is null) return double.NaN;
        long? limit = ReadLong(Path.Combine(dir, "memory.limit_in_bytes"));
        long? usage = ReadLong(Path.Combine(dir, "memory.usage_in_bytes"));
        // An unlimited v1 group reports a huge page-rounded number; treat anything above 1 PiB as "no limit".
        if (limit is not long l || usage is not long u || l >= 1L << 50) return double.NaN;
        return Math.Max(0, l - u);
    }

    /// <summary>The v1 memory cgroup directory of this process, or null.</summary>
    public static string? Directory()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/cgroup"))
            {
                // v1 lines look like "9:memory:/moelab/agent1".
                string[] parts = line.Split(':', 3);
                if (parts.Length == 3 && parts[1].Split(',').Contains("memory"))
                {
                    string dir = "/sys/fs/cgroup/memory" + parts[2];
                    return System.IO.Directory.Exists(dir) ? dir : null;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    internal static long? ReadLong(string path)
    {
        try
        {
            return long.TryParse(File.ReadAllText(path).Trim(), out long v) ? v : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
