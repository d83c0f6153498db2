using System.Text.Json;
using MoeLab.DeviceAgent.Api;

namespace MoeLab.Harness.Coordinator;

public enum CellState
{
    Pending,
    Leased,
    Succeeded,
    Failed,
}

/// <summary>A protocol message that does not fit the cell's state (wrong agent, stale attempt): HTTP 409.</summary>
public enum SubmitOutcome
{
    Queued,
    Requeued,
    AlreadyPresent,
}

public sealed class LeaseConflictException(string message) : Exception(message);

/// <summary>One cell as the coordinator tracks it across leases.</summary>
public sealed class CoordinatedCell(string id, JsonElement cell)
{
    public string Id { get; } = id;

    public JsonElement Cell { get; } = cell;

    public CellState State { get; internal set; } = CellState.Pending;

    /// <summary>1 for the first lease; each re-queue after a lost agent adds one.</summary>
    public int Attempt { get; internal set; }

    public string? AgentId { get; internal set; }

    public DateTimeOffset LastHeartbeat { get; internal set; }

    /// <summary>Events of the current attempt, in sequence order, each batch applied once.</summary>
    public List<TokenEvent> Tokens { get; } = [];

    public List<TelemetryRow> Telemetry { get; } = [];

    public string[] MetricNames { get; internal set; } = [];

    public long AppliedThrough { get; internal set; } = -1;

    public JsonElement? Result { get; internal set; }

    public string? Error { get; internal set; }

    /// <summary>What happened to earlier attempts ("attempt 1: agent a-1 stopped heartbeating at …").</summary>
    public List<string> History { get; } = [];

    public bool IsFinished => State is CellState.Succeeded or CellState.Failed;

    /// <summary>The attempt number before this cell was (re)submitted: attempts are counted per submission.</summary>
    internal int AttemptsBefore { get; set; }
}

/// <summary>
/// The coordinator's queue of run cells and its lease state machine: Pending → Leased(agent, attempt) → Succeeded |
/// Failed, with Leased → Pending again when the agent stops heartbeating (up to <c>maxAttempts</c>). Finished cells
/// are never touched again. Thread-safe; every change pulses waiters.
/// </summary>
public sealed class CellQueue(TimeSpan leaseTimeout, int maxAttempts = 3, TimeProvider? clock = null)
{
    private readonly object _gate = new();
    private readonly List<CoordinatedCell> _cells = [];
    private readonly Dictionary<string, CoordinatedCell> _byId = new(StringComparer.Ordinal);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;

    public TimeSpan LeaseTimeout => leaseTimeout;

    public CoordinatedCell Enqueue(string id, JsonElement cell)
    {
        lock (_gate)
        {
            if (_byId.ContainsKey(id)) throw new ArgumentException($"cell '{id}' is already queued", nameof(id));
            var c = new CoordinatedCell(id, cell.Clone());
            _cells.Add(c);
            _byId[id] = c;
            Monitor.PulseAll(_gate);
            return c;
        }
    }

    /// <summary>
    /// Queues a cell a harness submits: a new cell is enqueued, a failed one is queued again (a resumed experiment
    /// retries it; attempt numbers keep counting so messages from old attempts stay stale), any other is left alone.
    /// </summary>
    public SubmitOutcome Submit(string id, JsonElement cell)
    {
        lock (_gate)
        {
            if (!_byId.TryGetValue(id, out var c))
            {
                Enqueue(id, cell);
                return SubmitOutcome.Queued;
            }

            if (c.State != CellState.Failed) return SubmitOutcome.AlreadyPresent;
            c.History.Add($"attempt {c.Attempt}: failed ({c.Error}); submitted again");
            c.State = CellState.Pending;
            c.Error = null;
            c.Result = null;
            c.AgentId = null;
            c.AttemptsBefore = c.Attempt;
            Monitor.PulseAll(_gate);
            return SubmitOutcome.Requeued;
        }
    }

    /// <summary>A consistent copy of one cell's state; events and result only once it has finished.</summary>
    public CellStatus? Status(string id)
    {
        lock (_gate) return _byId.TryGetValue(id, out var c) ? StatusLocked(c) : null;
    }

    public CellStatus[] Statuses(bool withEvents = false)
    {
        lock (_gate) return _cells.Select(c => StatusLocked(c, withEvents)).ToArray();
    }

    private static CellStatus StatusLocked(CoordinatedCell c, bool withEvents = true)
    {
        bool done = c.IsFinished && withEvents;
        return new CellStatus(c.Id, c.State, c.Attempt, c.AgentId, c.Error, c.History.ToArray(), c.Tokens.Count,
            done ? c.Result?.Clone() : null, done ? c.Tokens.ToArray() : null, done ? c.MetricNames : null, done ? c.Telemetry.ToArray() : null);
    }

    public IReadOnlyList<CoordinatedCell> Snapshot()
    {
        lock (_gate) return _cells.ToList();
    }

    public CoordinatedCell? Find(string id)
    {
        lock (_gate) return _byId.GetValueOrDefault(id);
    }

    /// <summary>Leases the oldest pending cell to <paramref name="agentId"/>, or null when none is pending.</summary>
    public WorkLease? TryLease(string agentId)
    {
        lock (_gate)
        {
            ReapExpiredLocked();
            var cell = _cells.FirstOrDefault(c => c.State == CellState.Pending);
            if (cell is null) return null;
            cell.State = CellState.Leased;
            cell.Attempt++;
            cell.AgentId = agentId;
            cell.LastHeartbeat = _clock.GetUtcNow();
            cell.Tokens.Clear();
            cell.Telemetry.Clear();
            cell.AppliedThrough = -1;
            Monitor.PulseAll(_gate);
            return new WorkLease(cell.Id, cell.Attempt, cell.Cell);
        }
    }

    public void Heartbeat(string agentId, string? cellId, int attempt)
    {
        lock (_gate)
        {
            if (cellId is null) return;
            var cell = Leased(agentId, cellId, attempt);
            cell.LastHeartbeat = _clock.GetUtcNow();
        }
    }

    /// <summary>Applies a batch once; a batch at or below what was applied is acknowledged without effect.</summary>
    public long ApplyEvents(string agentId, string cellId, EventBatch batch)
    {
        lock (_gate)
        {
            var cell = Leased(agentId, cellId, batch.Attempt);
            cell.LastHeartbeat = _clock.GetUtcNow();
            if (batch.Sequence <= cell.AppliedThrough) return cell.AppliedThrough;
            if (batch.Sequence != cell.AppliedThrough + 1)
                throw new LeaseConflictException($"cell '{cellId}': batch {batch.Sequence} arrived before batch {cell.AppliedThrough + 1}");
            if (batch.MetricNames is not null) cell.MetricNames = batch.MetricNames;
            cell.Tokens.AddRange(batch.Tokens ?? []);
            cell.Telemetry.AddRange(batch.Telemetry ?? []);
            cell.AppliedThrough = batch.Sequence;
            Monitor.PulseAll(_gate);
            return cell.AppliedThrough;
        }
    }

    public void Complete(string agentId, string cellId, CompletionRequest request)
    {
        lock (_gate)
        {
            var cell = _byId.GetValueOrDefault(cellId) ?? throw new KeyNotFoundException($"no cell '{cellId}'");
            // A completion resent after a lost answer finds the cell already finished by this very attempt.
            if (cell.IsFinished && cell.Attempt == request.Attempt && cell.AgentId == agentId) return;
            cell = Leased(agentId, cellId, request.Attempt);
            if (request.EventBatches != cell.AppliedThrough + 1)
                throw new LeaseConflictException($"cell '{cellId}': completion says {request.EventBatches} event batches, {cell.AppliedThrough + 1} were received");
            cell.State = request.Succeeded ? CellState.Succeeded : CellState.Failed;
            cell.Error = request.Error;
            cell.Result = request.Result?.Clone();
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Re-queues (or fails, after the last attempt) every leased cell whose agent went quiet.</summary>
    public IReadOnlyList<string> ReapExpired()
    {
        lock (_gate) return ReapExpiredLocked();
    }

    /// <summary>Blocks until every cell has finished, or the timeout passes; reaping expired leases meanwhile.</summary>
    public bool WaitAll(TimeSpan timeout, Action<IReadOnlyList<CoordinatedCell>>? progress = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        lock (_gate)
        {
            while (true)
            {
                ReapExpiredLocked();
                progress?.Invoke(_cells);
                if (_cells.All(c => c.IsFinished)) return true;
                var left = deadline - DateTime.UtcNow;
                if (left <= TimeSpan.Zero) return false;
                Monitor.Wait(_gate, TimeSpan.FromMilliseconds(Math.Min(250, left.TotalMilliseconds)));
            }
        }
    }

    private List<string> ReapExpiredLocked()
    {
        var reaped = new List<string>();
        var now = _clock.GetUtcNow();
        foreach (var cell in _cells)
        {
            if (cell.State != CellState.Leased || now - cell.LastHeartbeat <= leaseTimeout) continue;
            string what = $"attempt {cell.Attempt}: agent {cell.AgentId} sent nothing for {leaseTimeout.TotalSeconds:0.#} s (last at {cell.LastHeartbeat:O}, noticed at {now:O})";
            cell.History.Add(what);
            reaped.Add(cell.Id);
            cell.AgentId = null;
            if (cell.Attempt - cell.AttemptsBefore >= maxAttempts)
            {
                cell.State = CellState.Failed;
                cell.Error = $"failed after {cell.Attempt - cell.AttemptsBefore} attempts; last: {what}";
            }
            else
            {
                cell.State = CellState.Pending;
            }
        }

        if (reaped.Count > 0) Monitor.PulseAll(_gate);
        return reaped;
    }

    private CoordinatedCell Leased(string agentId, string cellId, int attempt)
    {
        var cell = _byId.GetValueOrDefault(cellId) ?? throw new KeyNotFoundException($"no cell '{cellId}'");
        if (cell.State != CellState.Leased || cell.AgentId != agentId || cell.Attempt != attempt)
            throw new LeaseConflictException($"cell '{cellId}' attempt {attempt} is not leased to agent {agentId} (state {cell.State}, attempt {cell.Attempt})");
        return cell;
    }
}
