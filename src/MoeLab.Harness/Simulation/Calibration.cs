using System.Globalization;
using System.Runtime.InteropServices;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// Measures this machine for a device profile (<c>moelab calibrate</c>) with the same probe <c>calibrate --check</c>
/// takes around its engine run (<see cref="CalibrationProbe"/>): the model file's own expert slices read O_DIRECT at the
/// engine's depths in its bursts, a region sweep for a storage cache below the device, the engine's own decode step for
/// compute; plus the RAM the OS reports available. So the stored profile predicts what the probes predict, measured at
/// another moment, not by another method (the bare-matvec and sustained-read figures this replaced predicted −28…−38%).
/// </summary>
public static class Calibration
{
    public sealed record Options
    {
        /// <summary>The model whose expert slices are read and whose decode step is timed (on the disk to measure).</summary>
        public required string ModelPath { get; init; }

        /// <summary>The engine's reader threads; the probe reads at 1, 2, … up to it.</summary>
        public int QueueDepth { get; init; } = 4;

        public int Threads { get; init; }

        public double SecondsPerPoint { get; init; } = 1.0;

        public long ReadChunkBytes { get; init; }

        /// <summary>Read sizes (KiB) measured besides the model's slice size, for models whose slices are another size.</summary>
        public IReadOnlyList<int> SweepBlockKib { get; init; } = DefaultSweepBlockKib;

        /// <summary>Probes taken back to back and averaged point by point (one probe's compute and read-slowdown figures
        /// spread ±15% and more on a shared VM).</summary>
        public int Probes { get; init; } = 1;

        public Action<string>? Log { get; init; }
    }

    /// <summary>128 KiB to 8 MiB in powers of two: a Q4 slice of the preset models falls in it (Qwen3-30B-A3B 864 KiB, Qwen3.5-397B 2.3 MiB, Mixtral 8x7B 31.5 MiB above it).</summary>
    public static readonly IReadOnlyList<int> DefaultSweepBlockKib = [128, 256, 512, 1024, 2048, 4096, 8192];

    public static DeviceProfile Run(Options o)
    {
        var log = o.Log ?? (_ => { });
        var inv = CultureInfo.InvariantCulture;
        var (total, available, memSource) = Memory();
        var basis = new DeviceProfile
        {
            Name = "host",
            Memory = new DeviceProfile.MemorySpec { TotalGib = Math.Round(total / (double)(1L << 30), 2), AvailableToModelGib = Math.Round(available / (double)(1L << 30), 2) },
        };
        ArgumentOutOfRangeException.ThrowIfLessThan(o.Probes, 1);
        log(string.Create(inv, $"probing {Path.GetFileName(o.ModelPath)} {o.Probes} time(s) (O_DIRECT reads of its expert slices at depths up to {o.QueueDepth}, its decode step, {o.SecondsPerPoint} s per point), averaged"));
        var probes = new List<CalibrationProbe.Figures>();
        string loads = "";
        for (int i = 0; i < o.Probes; i++)
        {
            var figures = CalibrationProbe.Measure(o.ModelPath, new CalibrationProbe.Options
            {
                QueueDepth = o.QueueDepth, Threads = o.Threads, SecondsPerPoint = o.SecondsPerPoint, ReadChunkBytes = o.ReadChunkBytes, SweepBlockKib = o.SweepBlockKib,
            });
            log(CalibrationCheck.ProbeText(figures).TrimEnd('\n'));
            probes.Add(figures);
            loads += (i == 0 ? "" : "; ") + CalibrationCheck.LoadAverage();
        }

        var profile = CalibrationProbe.Profile(basis, o.ModelPath, probes, origin: "moelab calibrate");
        profile.Name = "host";
        profile.Description = string.Create(inv, $"{Environment.MachineName}: {RuntimeInformation.OSDescription}, {Environment.ProcessorCount} logical CPUs, measured {probes[0].TakenUtc:yyyy-MM-dd HH:mm}–{probes[^1].TakenUtc:HH:mm} UTC on {Path.GetFileName(o.ModelPath)} ({probes.Count} probe(s) averaged), load average {loads}");
        int memory = profile.Sources.FindIndex(s => s.Figure == "memory.*");
        profile.Sources[memory] = new DeviceProfile.SourceNote { Figure = "memory.*", Source = memSource };
        return profile;
    }

    private static (long Total, long Available, string Source) Memory()
    {
        long total = 0, available = 0;
        if (File.Exists("/proc/meminfo"))
        {
            foreach (string line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal)) total = Kib(line);
                else if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)) available = Kib(line);
            }
        }

        string source = "/proc/meminfo MemTotal and MemAvailable at calibration time";
        const string cgroup = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
        if (File.Exists(cgroup) && long.TryParse(File.ReadAllText(cgroup).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long limit) && limit < total)
        {
            available = Math.Min(available, limit);
            source += ", capped by the cgroup v1 memory limit";
        }

        if (total == 0)
        {
            total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
            available = total / 2;
            source = "GC-reported memory (no /proc/meminfo); available = half of it, an estimate";
        }

        return (total, available, source);

        static long Kib(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }
}
