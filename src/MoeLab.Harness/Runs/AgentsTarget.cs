using System.Text.Json;
using MoeLab.DeviceAgent.Api;
using MoeLab.Harness.Cli;
using MoeLab.Harness.Coordinator;
using MoeLab.Harness.Experiments;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Runs;

/// <summary>
/// Target <c>agents</c>: queues every pending cell with a coordinator (so several agents take cells in parallel) and
/// hands each cell's result back as the agent reported it. When a coordinator already answers at the experiment's
/// listen address (<c>moelab serve</c>) and accepts the enrolment token, the cells go to it; otherwise this run starts
/// one in-process. Agents dial in with <c>moelab agent --coordinator URL --token-file F</c>. A cell whose agent goes
/// quiet is re-queued by the coordinator and fails only after its last attempt; finished cells are kept either way.
/// </summary>
public sealed class AgentsTarget : ICellTarget, IBatchTarget, ITelemetryTarget, IDisposable
{
    private readonly ICellBoard _board;
    private readonly AgentsOptions _options;
    private readonly HashSet<string> _submitted = new(StringComparer.Ordinal);
    private readonly Dictionary<string, CellStatus> _finished = new(StringComparer.Ordinal);

    public AgentsTarget(AgentsOptions options, TextWriter log)
    {
        _options = options;
        string tokenFile = options.TokenFile ?? EnrolmentToken.DefaultPath;
        string token = EnrolmentToken.LoadOrCreate(tokenFile, out bool created);
        var endPoint = ServeCommand.ParseEndPoint(options.Listen);
        string? refusal = null;
        var running = endPoint.Port == 0 ? null : CoordinatorQueueClient.TryConnect(new Uri($"http://{endPoint}/"), token, tokenFile, out refusal);
        if (running is not null)
        {
            _board = new RemoteBoard(running);
            log.WriteLine($"using the coordinator already running at {running.Address}; agents dial it with --token-file {tokenFile}");
            return;
        }

        if (refusal is not null) throw new InvalidOperationException(refusal);
        _board = new InProcessBoard(options, token);
        if (created) log.WriteLine($"enrolment token created in {tokenFile} (mode 600): {token}");
        log.WriteLine($"coordinator listening on {_board.Address}; start agents with: moelab agent --coordinator {_board.Address} --token-file {tokenFile} --models DIR");
    }

    public string Name => "agents";

    public Uri Address => _board.Address;

    /// <summary>True when the cells went to a coordinator this run did not start.</summary>
    public bool UsesRunningCoordinator => _board is RemoteBoard;

    public string? Preflight(RunCell cell) => null; // each agent preflights against its own memory and model directory

    public void Prepare(IReadOnlyList<RunCell> pending)
    {
        // Submitted once per run: a cell that fails during this run stays failed (a later --resume submits it again).
        var fresh = pending.Where(c => _submitted.Add(c.CellId))
            .Select(c => new SubmittedCell(c.CellId, JsonSerializer.SerializeToElement(c, RunCellJson.Default.RunCell)))
            .ToList();
        if (fresh.Count > 0) _board.Submit(fresh);
    }

    public CellResult Run(RunCell cell, Action<TokenEvent> onToken, CancellationToken cancel)
    {
        Prepare([cell]);
        var deadline = DateTime.UtcNow + _options.Timeout;
        CellStatus c;
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            c = _board.Status(cell.CellId);
            if (c.IsFinished) break;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"no agent finished cell {cell.CellId} within {_options.Timeout.TotalMinutes:0.#} min (agents registered: {_board.AgentsRegistered})");
            Thread.Sleep(200);
        }

        _finished[cell.CellId] = c;
        if (c.State == CellState.Failed)
            throw new InvalidOperationException($"agent run failed: {c.Error}{(c.History.Length > 0 ? " (" + string.Join("; ", c.History) + ")" : "")}");
        if (c.Result is not { } json) throw new InvalidDataException($"agent {c.AgentId} completed cell {cell.CellId} without a result document");
        var result = json.Deserialize(RunCellJson.Default.CellResult) ?? throw new InvalidDataException($"agent {c.AgentId} sent a null result for {cell.CellId}");

        // Events arrive in batches and are applied once each (sequence numbers); a finished cell's list no longer changes.
        var tokens = c.Tokens ?? [];
        foreach (var t in tokens) onToken(t);
        return result.TokenEvents.Length > 0 ? result : result with { TokenEvents = tokens };
    }

    public CellTelemetry TelemetryOf(string cellId)
    {
        if (!_finished.TryGetValue(cellId, out var c) || c.MetricNames is not { Length: > 0 } names)
            return CellTelemetry.None("the agent sent no telemetry");
        return new CellTelemetry(names, c.Telemetry ?? [], []);
    }

    public void Dispose() => _board.Dispose();
}
