using MoeLab.DeviceAgent.Telemetry;

namespace MoeLab.DeviceAgent.Tests.Telemetry;

public sealed class TelemetrySourceTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("moelab-thermal-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void ThermalReportsTheHottestSensorInCelsius()
    {
        Directory.CreateDirectory(Path.Combine(_root, "thermal", "thermal_zone0"));
        Directory.CreateDirectory(Path.Combine(_root, "thermal", "thermal_zone1"));
        Directory.CreateDirectory(Path.Combine(_root, "hwmon", "hwmon0"));
        File.WriteAllText(Path.Combine(_root, "thermal", "thermal_zone0", "temp"), "41500\n");
        File.WriteAllText(Path.Combine(_root, "thermal", "thermal_zone1", "temp"), "38000\n");
        File.WriteAllText(Path.Combine(_root, "hwmon", "hwmon0", "temp1_input"), "57250\n");

        var source = new ThermalSource(Path.Combine(_root, "thermal"), Path.Combine(_root, "hwmon"));
        var values = new double[source.Metrics.Count];
        source.Sample(values, 0);

        Assert.Equal(3, source.SensorCount);
        Assert.Null(source.Unavailable);
        Assert.Equal(57.25, values[0], 6);
    }

    [Fact]
    public void ThermalWithoutSensorsSaysSoAndReportsNaN()
    {
        var source = new ThermalSource(Path.Combine(_root, "none"), Path.Combine(_root, "none2"));
        var values = new double[source.Metrics.Count];
        source.Sample(values, 0);

        Assert.NotNull(source.Unavailable);
        Assert.True(double.IsNaN(values[0]));
    }

    [Fact]
    public void MemoryAndStorageReadTheLinuxProcessCounters()
    {
        if (!OperatingSystem.IsLinux()) return;
        var memory = new MemorySource();
        var m = new double[memory.Metrics.Count];
        memory.Sample(m, 0);
        Assert.InRange(m[0], 1 << 20, 1L << 40);            // a .NET process is more than 1 MiB resident
        Assert.True(m[1] >= m[0]);                           // peak ≥ current
        Assert.True(m[2] > 0);

        var storage = new StorageSource();
        var s = new double[storage.Metrics.Count];
        storage.Sample(s, 0);
        Assert.Null(storage.Unavailable);
        Assert.True(s[0] >= 0);
        Assert.True(double.IsNaN(s[1]));                     // no rate before a second sample
        storage.Sample(s, 1);
        Assert.True(s[1] >= 0);
    }

    [Fact]
    public void CpuPercentReflectsWorkDoneBetweenSamples()
    {
        var cpu = new CpuSource();
        var v = new double[1];
        cpu.Sample(v, 0);
        Assert.True(double.IsNaN(v[0]));
        var start = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        double x = 0;
        while ((System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - start).TotalMilliseconds < 50) x += Math.Sqrt(x + 1);
        cpu.Sample(v, 1.0);
        Assert.True(v[0] > 0, $"cpu percent {v[0]} after busy work (x={x})");
    }

    [Fact]
    public void SamplerProducesRowsWithOneValuePerMetric()
    {
        using var sampler = new TelemetrySampler(TelemetrySampler.DefaultSources(), TimeSpan.FromMilliseconds(20));
        sampler.Start();
        Thread.Sleep(100);
        sampler.Stop();
        var rows = sampler.Drain();

        Assert.True(rows.Count >= 2);
        Assert.All(rows, r => Assert.Equal(sampler.MetricNames.Count, r.Values.Length));
        Assert.Contains("rss_bytes", sampler.MetricNames);
        Assert.Contains("temperature_c", sampler.MetricNames);
        Assert.Empty(sampler.Drain());
    }
}
