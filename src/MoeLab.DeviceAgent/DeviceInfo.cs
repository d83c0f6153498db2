using System.Runtime.InteropServices;
using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Emulation;
using MoeLab.DeviceAgent.Telemetry;

namespace MoeLab.DeviceAgent;

/// <summary>Builds the device description an agent registers with.</summary>
public static class DeviceInfo
{
    public static DeviceDescription Describe(string name, ModelDirectory models, EmulationReport? emulation, IReadOnlyDictionary<string, string> unavailableTelemetry) =>
        new(
            name,
            RuntimeInformation.OSDescription,
            RuntimeInformation.OSArchitecture.ToString(),
            CpuModel(),
            Environment.ProcessorCount,
            emulation?.MemoryLimitBytes ?? TotalMemory(),
            AvailableMemory(),
            models.Root,
            models.List(),
            MemoryCgroup.BlockDevice(models.Root),
            emulation,
            new Dictionary<string, string>(unavailableTelemetry));

    /// <summary>Memory this process may still use: the tighter of the OS's available memory and the cgroup's headroom.</summary>
    public static long AvailableMemory()
    {
        double best = double.NaN;
        var memory = new MemorySource();
        var values = new double[memory.Metrics.Count];
        memory.Sample(values, 0);
        best = values[2];
        if (double.IsNaN(best)) best = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return (long)best;
    }

    private static long TotalMemory()
    {
        long? kib = OperatingSystem.IsLinux() ? ProcFilesTotal() : null;
        return kib ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    private static long? ProcFilesTotal()
    {
        foreach (string line in File.ReadLines("/proc/meminfo"))
        {
            if (!line.StartsWith("MemTotal:", StringComparison.Ordinal)) continue;
            string[] parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }

        return null;
    }

    private static string CpuModel()
    {
        try
        {
            if (OperatingSystem.IsLinux())
            {
                foreach (string line in File.ReadLines("/proc/cpuinfo"))
                {
                    if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':') + 1)..].Trim();
                }
            }
        }
        catch (IOException)
        {
        }

        return RuntimeInformation.ProcessArchitecture.ToString();
    }
}
