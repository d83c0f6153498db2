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
        var memory = new MemorySource();
        var values = new double[memory.Metrics.Count];
        memory.Sample(values, 0);
        double available = values[2];
        return double.IsNaN(available) ? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes : (long)available;
    }

    private static long TotalMemory() =>
        (OperatingSystem.IsLinux() ? ProcFiles.ReadValue("/proc/meminfo", "MemTotal") * 1024 : null)
        ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;

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
