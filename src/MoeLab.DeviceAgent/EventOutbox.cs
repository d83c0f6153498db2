using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Telemetry;

namespace MoeLab.DeviceAgent;

/// <summary>
/// Buffers a lease's token events and telemetry rows and ships them in numbered batches, one in flight at a time.
/// A batch stays buffered until the coordinator acknowledges it, so a dropped connection only delays it; the
/// coordinator applies each sequence number once, so a resend after a lost acknowledgement is harmless.
/// </summary>
public sealed class EventOutbox
{
    private readonly object _gate = new();
    private readonly List<TokenEvent> _tokens = [];
    private readonly List<TelemetryRow> _telemetry = [];
    private EventBatch? _unacked;
    private long _next;

    public EventOutbox(int attempt, IReadOnlyList<string> metricNames, int maxTokensPerBatch = 256)
    {
        Attempt = attempt;
        MetricNames = metricNames.ToArray();
        MaxTokensPerBatch = maxTokensPerBatch;
    }

    public int Attempt { get; }

    public string[] MetricNames { get; }

    public int MaxTokensPerBatch { get; }

    /// <summary>Batches acknowledged so far.</summary>
    public long Acknowledged { get; private set; }

    public void Add(TokenEvent token)
    {
        lock (_gate) _tokens.Add(token);
    }

    public void Add(IEnumerable<TelemetrySample> samples)
    {
        lock (_gate)
        {
            foreach (var s in samples)
                _telemetry.Add(new TelemetryRow(s.Seconds, s.Values.Select(v => double.IsNaN(v) ? (double?)null : v).ToArray()));
        }
    }

    /// <summary>Whether anything waits to be sent (including an unacknowledged batch).</summary>
    public bool HasPending
    {
        get
        {
            lock (_gate) return _unacked is not null || _tokens.Count > 0 || _telemetry.Count > 0;
        }
    }

    /// <summary>The batch to send now: the unacknowledged one again, or a new one from what is buffered; null if none.</summary>
    public EventBatch? Next()
    {
        lock (_gate)
        {
            if (_unacked is not null) return _unacked;
            if (_tokens.Count == 0 && _telemetry.Count == 0) return null;
            int n = Math.Min(_tokens.Count, MaxTokensPerBatch);
            var tokens = _tokens.GetRange(0, n).ToArray();
            _tokens.RemoveRange(0, n);
            var rows = _telemetry.ToArray();
            _telemetry.Clear();
            _unacked = new EventBatch(Attempt, _next, tokens, _next == 0 ? MetricNames : null, rows);
            return _unacked;
        }
    }

    /// <summary>Records the coordinator's acknowledgement of everything through <paramref name="sequence"/>.</summary>
    public void Acknowledge(long sequence)
    {
        lock (_gate)
        {
            if (_unacked is null || sequence < _unacked.Sequence) return;
            _unacked = null;
            _next = sequence + 1;
            Acknowledged = _next;
        }
    }
}
