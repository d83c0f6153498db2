using System.Text.Json;
using MoeLab.DeviceAgent.Api;
using MoeLab.Harness.Cli;
using MoeLab.Harness.Coordinator;
using MoeLab.Harness.Experiments;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Runs;

/// <summary>
/// Target <c>agents</c>: starts the coordinator in this process, queues every pending cell (so several agents take
/// cells in parallel), and hands each cell's result back as the agent reported it. Agents dial in with
/// <c>moelab agent --coordinator URL --token-file F</c>. A cell whose agent goes quiet is re-queued by the
/// coordinator and fails only after its last attempt; finished cells are kept either way.
/// </summary>
public sealed class AgentsTarget : ICellTarget, IBatchTarget, ITelemetryTarget, IDisposable
{
    private readonly CoordinatorServer _server;
    private readonly AgentsOptions _options;

    public AgentsTarget(AgentsOptions options, TextWriter log)
    {
        _options = options;
        string tokenFile = options.TokenFile ?? EnrolmentToken.DefaultPath;
        string token = EnrolmentToken.LoadOrCreate(tokenFile, out bool created);
        var queue = new CellQueue(options.LeaseTimeout);
        _server = new CoordinatorServer(new CoordinatorOptions(ServeCommand.ParseEndPoint(options.Listen), token, options.LeaseTimeout,
            TimeSpan.FromSeconds(Math.Max(1, options.LeaseTimeout.TotalSeconds / 6)), TimeSpan.FromDays(7)), queue);
        _server.StartAsync().GetAwaiter().GetResult();
        if (created) log.WriteLine($"enrolment token created in {tokenFile} (mode 600): {token}");
        log.WriteLine($"coordinator listening on {_server.Address}; start agents with: moelab agent --coordinator {_server.Address} --token-file {tokenFile} --models DIR");
    }

    public string Name => "agents";

    public Uri Address => _server.Address;

    public string? Preflight(RunCell cell) => null; // each agent preflights against its own memory and model directory

    public void Prepare(IReadOnlyList<RunCell> pending)
    {
        foreach (var cell in pending)
        {
            if (_server.Queue.Find(cell.CellId) is null)
                _server.Queue.Enqueue(cell.CellId, JsonSerializer.SerializeToElement(cell, RunCellJson.Default.RunCell));
        }
    }

    public CellResult Run(RunCell cell, Action<TokenEvent> onToken, CancellationToken cancel)
    {
        Prepare([cell]);
        var deadline = DateTime.UtcNow + _options.Timeout;
        CoordinatedCell c;
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            _server.Queue.ReapExpired();
            c = _server.Queue.Find(cell.CellId)!;
            if (c.IsFinished) break;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"no agent finished cell {cell.CellId} within {_options.Timeout.TotalMinutes:0.#} min (agents registered: {_server.AgentsRegistered})");
            Thread.Sleep(200);
        }

        if (c.State == CellState.Failed)
            throw new InvalidOperationException($"agent run failed: {c.Error}{(c.History.Count > 0 ? " (" + string.Join("; ", c.History) + ")" : "")}");
        if (c.Result is not { } json) throw new InvalidDataException($"agent {c.AgentId} completed cell {cell.CellId} without a result document");
        var result = json.Deserialize(RunCellJson.Default.CellResult) ?? throw new InvalidDataException($"agent {c.AgentId} sent a null result for {cell.CellId}");

        // Events arrive in batches and are applied once each (sequence numbers); a finished cell's list no longer changes.
        var tokens = c.Tokens.ToArray();
        foreach (var t in tokens) onToken(t);
        return result.TokenEvents.Length > 0 ? result : result with { TokenEvents = tokens };
    }

    public CellTelemetry TelemetryOf(string cellId)
    {
        var c = _server.Queue.Find(cellId);
        if (c is null || c.MetricNames.Length == 0) return CellTelemetry.None("the agent sent no telemetry");
        return new CellTelemetry(c.MetricNames, c.Telemetry.ToArray(), []);
    }

    public void Dispose() => _server.DisposeAsync().AsTask().GetAwaiter().GetResult();
}
