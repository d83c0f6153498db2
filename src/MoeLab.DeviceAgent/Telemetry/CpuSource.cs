using System.Diagnostics;

namespace MoeLab.DeviceAgent.Telemetry;

/// <summary>Process CPU use between samples, in percent of one core (200 = two cores fully busy).</summary>
public sealed class CpuSource : ITelemetrySource
{
    private TimeSpan _lastCpu = TimeSpan.MinValue;
    private double _lastTime;

    public string Name => "cpu";

    public IReadOnlyList<string> Metrics { get; } = ["cpu_percent"];

    public string? Unavailable => null;

    public void Sample(Span<double> values, double elapsedSeconds)
    {
        values[0] = double.NaN;
        TimeSpan cpu;
        try
        {
            cpu = Process.GetCurrentProcess().TotalProcessorTime;
        }
        catch (PlatformNotSupportedException)
        {
            return; // iOS may refuse; NaN says so
        }

        if (_lastCpu != TimeSpan.MinValue && elapsedSeconds > _lastTime)
            values[0] = (cpu - _lastCpu).TotalSeconds / (elapsedSeconds - _lastTime) * 100.0;
        _lastCpu = cpu;
        _lastTime = elapsedSeconds;
    }
}
