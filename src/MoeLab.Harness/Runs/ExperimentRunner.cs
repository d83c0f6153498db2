using System.Diagnostics;
using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Telemetry;
using MoeLab.Harness.Experiments;
using MoeLab.Harness.Results;

namespace MoeLab.Harness.Runs;

/// <summary>How a run ended: cells run now, skipped as already finished, and failed.</summary>
public sealed record RunOutcome(int Ran, int Skipped, int Failed);

/// <summary>
/// The run loop: for each cell not already in the result set, run it through the target (which does warm-up and
/// repetitions), sample telemetry meanwhile, and write the cell's record atomically the moment it ends, then refresh
/// the result views. A failing cell is recorded as failed and the loop goes on; a killed run keeps every finished cell.
/// </summary>
public sealed class ExperimentRunner(ICellTarget target, ResultStore store, IRunProgress progress, TimeSpan telemetryInterval, Action<ResultStore>? afterCell = null)
{
    /// <summary>Telemetry sources sampled on this host for targets that run here; null = the standard set.</summary>
    public Func<ITelemetrySource[]>? HostSources { get; init; }

    public RunOutcome Run(IReadOnlyList<ExperimentCell> cells, CancellationToken cancel)
    {
        return progress.Wrap(cells.Count, () =>
        {
            var pending = cells.Where(c => !store.IsComplete(c.Id)).ToList();
            if (target is IBatchTarget batch) batch.Prepare(pending.Select(c => c.Cell).ToList());
            int ran = 0, skipped = 0, failed = 0;
            for (int i = 0; i < cells.Count; i++)
            {
                cancel.ThrowIfCancellationRequested();
                var cell = cells[i];
                if (store.IsComplete(cell.Id))
                {
                    skipped++;
                    progress.Skipped(cell);
                    continue;
                }

                progress.CellStarted(cell, i + 1, cells.Count);
                string? error = RunCell(cell, cancel, out var summary);
                progress.CellFinished(cell, summary, error);
                if (error is null) ran++;
                else failed++;
                afterCell?.Invoke(store);
            }

            return new RunOutcome(ran, skipped, failed);
        });
    }

    private string? RunCell(ExperimentCell cell, CancellationToken cancel, out CellSummary? summary)
    {
        summary = null;
        var started = DateTimeOffset.UtcNow;
        string? reason = target.Preflight(cell.Cell);
        if (reason is not null)
        {
            store.WriteFailure(new CellFailure(cell.Id, cell.Name, target.Name, "preflight: " + reason, started));
            return "preflight: " + reason;
        }

        bool sampleHost = target is not ITelemetryTarget && !target.Name.StartsWith("sim:", StringComparison.Ordinal);
        using var sampler = sampleHost ? new TelemetrySampler(HostSources?.Invoke() ?? TelemetrySampler.DefaultSources(), telemetryInterval) : null;
        var clock = Stopwatch.StartNew();
        var arrivals = new List<double>();
        var streamed = new List<TokenEvent>();
        var recent = new Queue<double>();
        void OnToken(TokenEvent e)
        {
            double t = clock.Elapsed.TotalSeconds;
            arrivals.Add(t);
            streamed.Add(e);
            recent.Enqueue(t);
            while (recent.Count > 16) recent.Dequeue();
            if (recent.Count > 1) progress.Token((recent.Count - 1) / (t - recent.Peek()));
        }

        CellResult result;
        try
        {
            sampler?.Start();
            result = target.Run(cell.Cell, OnToken, cancel);
        }
        catch (OperationCanceledException)
        {
            throw;
        }
        catch (Exception e)
        {
            // A target failure (missing model, engine error, lost agent) fails this cell only; the reason is kept.
            string message = $"{e.GetType().Name}: {e.Message}";
            store.WriteFailure(new CellFailure(cell.Id, cell.Name, target.Name, message, DateTimeOffset.UtcNow));
            return message;
        }
        finally
        {
            sampler?.Stop();
        }

        if (result.CellId != cell.Id)
        {
            string message = $"the target answered for cell '{result.CellId}', not '{cell.Id}'";
            store.WriteFailure(new CellFailure(cell.Id, cell.Name, target.Name, message, DateTimeOffset.UtcNow));
            return message;
        }

        if (result.TokenEvents.Length == 0 && streamed.Count > 0) result = result with { TokenEvents = streamed.ToArray() };
        var telemetry = target is ITelemetryTarget t ? t.TelemetryOf(cell.Id)
            : sampler is not null ? HostTelemetry(sampler, arrivals)
            : CellTelemetry.None($"target {target.Name} runs no device (predicted figures)");
        var record = new CellRecord
        {
            CellId = cell.Id,
            Name = cell.Name,
            ConfigHash = cell.ConfigHash,
            Values = new Dictionary<string, string>(cell.Values),
            IsBaseline = cell.IsBaseline,
            Target = target.Name,
            Cell = cell.Cell,
            Result = result,
            Telemetry = telemetry,
            Started = started,
            Finished = DateTimeOffset.UtcNow,
        };
        store.WriteCell(record);
        summary = CellSummary.Of(record);
        return null;
    }

    /// <summary>Host samples plus the token rate in each sampling interval (from when tokens reached the harness).</summary>
    private static CellTelemetry HostTelemetry(TelemetrySampler sampler, List<double> arrivals)
    {
        var samples = sampler.Drain();
        var names = new List<string> { "tokens_per_s" };
        names.AddRange(sampler.MetricNames);
        var rows = new List<TelemetryRow>(samples.Count);
        double previous = 0;
        int next = 0; // arrivals and samples are both in time order: one pass over each
        foreach (var s in samples)
        {
            var values = new double?[names.Count];
            double span = s.Seconds - previous;
            while (next < arrivals.Count && arrivals[next] <= previous) next++;
            int first = next;
            while (next < arrivals.Count && arrivals[next] <= s.Seconds) next++;
            values[0] = span > 0 && rows.Count > 0 ? (next - first) / span : null;
            for (int i = 0; i < s.Values.Length; i++) values[i + 1] = double.IsNaN(s.Values[i]) ? null : s.Values[i];
            rows.Add(new TelemetryRow(s.Seconds, values));
            previous = s.Seconds;
        }

        return new CellTelemetry(names.ToArray(), rows.ToArray(), new Dictionary<string, string>(sampler.UnavailableSources));
    }
}
