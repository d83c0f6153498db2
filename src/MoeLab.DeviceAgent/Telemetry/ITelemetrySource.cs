namespace MoeLab.DeviceAgent.Telemetry;

/// <summary>
/// One kind of device reading (memory, storage, CPU, thermal), like a BenchmarkDotNet diagnoser: it names its
/// metrics once, and each sample fills their values. A reading the platform does not expose is NaN, and a source
/// that cannot work at all says why in <see cref="Unavailable"/>; nothing is ever invented.
/// </summary>
public interface ITelemetrySource
{
    string Name { get; }

    /// <summary>Metric names with their unit in the name (rss_bytes, storage_read_mb_per_s, …).</summary>
    IReadOnlyList<string> Metrics { get; }

    /// <summary>Why this source reports nothing on this machine, or null when it works.</summary>
    string? Unavailable { get; }

    /// <summary>Writes the current value of each metric (NaN where not available) into <paramref name="values"/>.</summary>
    void Sample(Span<double> values, double elapsedSeconds);
}
