namespace MoeLab.DeviceAgent.Telemetry;

/// <summary>
/// Bytes this process made the block layer read (/proc/self/io read_bytes: device reads, not page-cache hits) and
/// their rate. This is what tells SSD streaming from RAM-speed re-reads.
/// </summary>
public sealed class StorageSource : ITelemetrySource
{
    private double _lastBytes = double.NaN;
    private double _lastTime;

    public string Name => "storage";

    public IReadOnlyList<string> Metrics { get; } = ["storage_read_bytes", "storage_read_mb_per_s"];

    public string? Unavailable =>
        !OperatingSystem.IsLinux() ? "per-process storage counters are read from /proc/self/io, which only Linux has"
        : ProcFiles.ReadValue("/proc/self/io", "read_bytes") is null ? "/proc/self/io is not readable (kernel without task I/O accounting?)"
        : null;

    public void Sample(Span<double> values, double elapsedSeconds)
    {
        values.Fill(double.NaN);
        if (!OperatingSystem.IsLinux() || ProcFiles.ReadValue("/proc/self/io", "read_bytes") is not long bytes) return;
        values[0] = bytes;
        if (!double.IsNaN(_lastBytes) && elapsedSeconds > _lastTime)
            values[1] = (bytes - _lastBytes) / (elapsedSeconds - _lastTime) / 1e6;
        _lastBytes = bytes;
        _lastTime = elapsedSeconds;
    }
}
