using System.Diagnostics;

namespace MoeLab.DeviceAgent.Telemetry;

/// <summary>One row of readings: seconds since the sampler started, then one value per metric (NaN = not available).</summary>
public sealed record TelemetrySample(double Seconds, double[] Values);

/// <summary>
/// Samples every source at a fixed rate on its own thread while a run executes. Rows are kept in memory (a few per
/// second is small) and drained by the caller, which streams them to files or to the coordinator.
/// </summary>
public sealed class TelemetrySampler : IDisposable
{
    private readonly ITelemetrySource[] _sources;
    private readonly int[] _offsets;
    private readonly TimeSpan _interval;
    private readonly Stopwatch _clock = new();
    private readonly object _gate = new();
    private readonly List<TelemetrySample> _pending = [];
    private readonly ManualResetEventSlim _stop = new();
    private Thread? _thread;

    public TelemetrySampler(IEnumerable<ITelemetrySource> sources, TimeSpan interval)
    {
        if (interval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(interval), interval, "the sampling interval must be positive");
        _sources = sources.ToArray();
        _interval = interval;
        _offsets = new int[_sources.Length];
        var names = new List<string>();
        for (int i = 0; i < _sources.Length; i++)
        {
            _offsets[i] = names.Count;
            names.AddRange(_sources[i].Metrics);
        }

        MetricNames = names;
    }

    /// <summary>The standard set: memory, storage, CPU, thermal.</summary>
    public static ITelemetrySource[] DefaultSources() => [new MemorySource(), new StorageSource(), new CpuSource(), new ThermalSource()];

    public IReadOnlyList<string> MetricNames { get; }

    /// <summary>Each source that reports nothing here, with the reason (for the manifest / device description).</summary>
    public IReadOnlyDictionary<string, string> UnavailableSources =>
        _sources.Where(s => s.Unavailable is not null).ToDictionary(s => s.Name, s => s.Unavailable!);

    public void Start()
    {
        if (_thread is not null) throw new InvalidOperationException("the sampler is already running");
        _clock.Start();
        SampleOnce();
        _thread = new Thread(Loop) { IsBackground = true, Name = "moelab-telemetry" };
        _thread.Start();
    }

    /// <summary>Takes one sample now (also used by tests).</summary>
    public TelemetrySample SampleOnce()
    {
        var values = new double[MetricNames.Count];
        double t = _clock.Elapsed.TotalSeconds;
        for (int i = 0; i < _sources.Length; i++)
            _sources[i].Sample(values.AsSpan(_offsets[i], _sources[i].Metrics.Count), t);
        var sample = new TelemetrySample(t, values);
        lock (_gate) _pending.Add(sample);
        return sample;
    }

    /// <summary>Removes and returns the samples taken since the last drain.</summary>
    public List<TelemetrySample> Drain()
    {
        lock (_gate)
        {
            var taken = new List<TelemetrySample>(_pending);
            _pending.Clear();
            return taken;
        }
    }

    public void Stop()
    {
        if (_thread is null) return;
        _stop.Set();
        _thread.Join();
        _thread = null;
        SampleOnce();
    }

    public void Dispose()
    {
        Stop();
        _stop.Dispose();
    }

    private void Loop()
    {
        while (!_stop.Wait(_interval)) SampleOnce();
    }
}
