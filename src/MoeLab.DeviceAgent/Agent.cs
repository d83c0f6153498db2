using System.Diagnostics;
using System.Text.Json;
using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Telemetry;

namespace MoeLab.DeviceAgent;

/// <summary>Settings of one agent process.</summary>
public sealed record AgentOptions(
    Uri Coordinator,
    string EnrolmentToken,
    ModelDirectory Models,
    string Name,
    TimeSpan TelemetryInterval,
    TimeSpan PollWait,
    Api.EmulationReport? Emulation,
    int MaxCells = int.MaxValue,
    TimeSpan? IdleExit = null);

/// <summary>
/// The device side: registers, then repeatedly leases a cell, runs it with the engine while heartbeating and
/// streaming token events and telemetry, and reports completion. Nothing the engine produced is dropped: events wait
/// in the <see cref="EventOutbox"/> until acknowledged.
/// </summary>
public sealed class Agent(AgentOptions options, ICellRunner runner, TextWriter log)
{
    public int CellsCompleted { get; private set; }

    public int Run(CancellationToken cancel)
    {
        using var client = new CoordinatorClient(options.Coordinator);
        using var sampler = new TelemetrySampler(TelemetrySampler.DefaultSources(), options.TelemetryInterval);
        var device = DeviceInfo.Describe(options.Name, options.Models, options.Emulation, sampler.UnavailableSources);
        var registration = client.Register(new RegisterRequest(options.EnrolmentToken, AgentApi.Version, device), cancel);
        log.WriteLine($"agent {registration.AgentId}: registered with {options.Coordinator} ({device.Models.Length} models in {device.ModelsDirectory})");

        var idle = Stopwatch.StartNew();
        while (!cancel.IsCancellationRequested && CellsCompleted < options.MaxCells)
        {
            var lease = client.Poll(options.PollWait, cancel);
            if (lease is null)
            {
                if (options.IdleExit is TimeSpan limit && idle.Elapsed > limit) break;
                continue;
            }

            RunLease(client, registration, lease, cancel);
            CellsCompleted++;
            idle.Restart();
        }

        return 0;
    }

    private void RunLease(CoordinatorClient client, RegisterResponse registration, WorkLease lease, CancellationToken cancel)
    {
        log.WriteLine($"cell {lease.CellId} (attempt {lease.Attempt}): started");
        using var sampler = new TelemetrySampler(TelemetrySampler.DefaultSources(), options.TelemetryInterval);
        var outbox = new EventOutbox(lease.Attempt, sampler.MetricNames);
        using var done = new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancel, done.Token);

        // Heartbeats and event shipping run beside the engine so a long cell never looks dead.
        var heartbeat = new Thread(() =>
        {
            var interval = TimeSpan.FromSeconds(Math.Max(0.2, registration.HeartbeatSeconds));
            while (!linked.Token.WaitHandle.WaitOne(interval))
            {
                try
                {
                    client.Heartbeat(new HeartbeatRequest(lease.CellId, lease.Attempt), linked.Token);
                }
                catch (Exception e) when (e is HttpRequestException or InvalidDataException or OperationCanceledException or IOException)
                {
                    // A missed heartbeat is retried on the next tick; the lease timeout is several ticks long.
                }
            }
        }) { IsBackground = true, Name = "moelab-heartbeat" };
        var shipper = new Thread(() =>
        {
            while (!linked.Token.IsCancellationRequested)
            {
                outbox.Add(sampler.Drain());
                try
                {
                    Flush(client, lease, outbox, linked.Token, untilEmpty: false);
                }
                catch (Exception e) when (e is HttpRequestException or IOException or InvalidDataException or ObjectDisposedException or CoordinatorAuthException)
                {
                    // Unsent batches stay in the outbox; the next tick or the final flush after the cell resends them.
                }

                linked.Token.WaitHandle.WaitOne(TimeSpan.FromMilliseconds(250));
            }
        }) { IsBackground = true, Name = "moelab-events" };

        JsonElement? result = null;
        string? error = null;
        sampler.Start();
        heartbeat.Start();
        shipper.Start();
        try
        {
            string? refusal = runner.Preflight(lease.Cell, options.Models, DeviceInfo.AvailableMemory());
            if (refusal is not null) error = "refused before start: " + refusal;
            else result = runner.Run(lease.Cell, options.Models, outbox.Add, cancel);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            error = $"{e.GetType().Name}: {e.Message}";
        }
        finally
        {
            sampler.Stop();
            done.Cancel();
            shipper.Join();
            heartbeat.Join();
        }

        outbox.Add(sampler.Drain());
        Flush(client, lease, outbox, cancel, untilEmpty: true);
        client.Complete(lease.CellId, new CompletionRequest(lease.Attempt, error is null, error, outbox.Acknowledged, result), cancel);
        log.WriteLine($"cell {lease.CellId} (attempt {lease.Attempt}): {(error is null ? "done" : "failed: " + error)}");
    }

    private static void Flush(CoordinatorClient client, WorkLease lease, EventOutbox outbox, CancellationToken cancel, bool untilEmpty)
    {
        do
        {
            var batch = outbox.Next();
            if (batch is null) return;
            try
            {
                var ack = client.SendEvents(lease.CellId, batch, cancel);
                outbox.Acknowledge(ack.AppliedThrough);
            }
            catch (OperationCanceledException) when (!untilEmpty)
            {
                return;
            }
        }
        while (untilEmpty || outbox.HasPending);
    }
}
