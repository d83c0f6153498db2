using System.Collections.Concurrent;
using MoeLab.DeviceAgent.Api;
using MoeLab.Engine.Model;
using MoeLab.Engine.Telemetry;
using MoeLab.Harness.Simulation;
using MoeLab.Harness.Traces;
using MoeLab.Strategies;

namespace MoeLab.Harness.Runs;

/// <summary>
/// <c>sim:&lt;profile&gt;</c>: runs a cell by replaying its routing trace through the simulator with the device profile.
/// Mapping from the cell: Trace/TraceFormat → the replayed trace; ModelPreset (or the trace's "model" header) → the
/// full-size shape; BudgetBytes → the expert cache capacity in bytes (null = every expert resident); Cache/Prefetch →
/// catalog strategies; Io's <c>queue_depth</c> parameter → the SSD queue depth; IoMode <c>buffered</c> → page-cache
/// mode (the OS page cache is the only cache, dense weights compete in it; capacity = budget or the profile's RAM);
/// WarmupTokens are replayed but not reported, then GenerateTokens are reported. Precision other than native and
/// routing other than unchanged are refused in preflight (a trace records the router's choices, not its logits).
/// The replay is deterministic, so every repetition reports the same figures.
/// </summary>
public sealed class SimTarget : ICellTarget
{
    private readonly ConcurrentDictionary<(string, string?, int?), RoutingTrace> _traces = new();

    public SimTarget(string profile)
    {
        ProfileName = profile;
        Profile = DeviceProfile.Resolve(profile);
    }

    public SimTarget(DeviceProfile profile)
    {
        ProfileName = profile.Name;
        Profile = profile;
    }

    public string ProfileName { get; }

    public DeviceProfile Profile { get; }

    public string Name => "sim:" + ProfileName;

    public string? Preflight(RunCell cell)
    {
        try
        {
            _ = Setup(cell);
            return null;
        }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or StrategyException or NotSupportedException)
        {
            return e.Message;
        }
    }

    public CellResult Run(RunCell cell, Action<TokenEvent> onToken, CancellationToken cancel)
    {
        var setup = Setup(cell);
        // The simulator's counters (and per-layer split) start after the warm-up tokens, as the reported rows do.
        var options = setup.Options() with { WarmupTokens = cell.WarmupTokens };
        long capacity = Capacity(cell, setup);
        var events = new List<TokenEvent>();
        SimulationResult? last = null;
        int layers = setup.Trace.Layers;
        long[] layerHits = new long[layers], layerMisses = new long[layers], layerPrefetchHits = new long[layers];
        for (int rep = 0; rep < Math.Max(1, cell.Repetitions); rep++)
        {
            cancel.ThrowIfCancellationRequested();
            last = Simulator.Run(options, capacity);
            for (int l = 0; l < layers; l++)
            {
                layerHits[l] += last.LayerHits[l] - last.LayerPrefetchHits[l];
                layerMisses[l] += last.LayerMisses[l];
                layerPrefetchHits[l] += last.LayerPrefetchHits[l];
            }

            var rows = last.PerToken!;
            for (int i = cell.WarmupTokens; i < rows.Length; i++)
            {
                var r = rows[i];
                // The simulator's hits include prefetch hits; a TokenEvent's are disjoint (as the engine's).
                var e = new TokenEvent(rep, i - cell.WarmupTokens, -1, r.WallSeconds * 1e3, r.Hits - r.PrefetchHits, r.Misses, r.PrefetchHits, r.BytesRead,
                    r.IoSeconds * 1e3, r.ComputeSeconds * 1e3, r.StallSeconds * 1e3);
                events.Add(e);
                onToken(e);
            }
        }

        // Totals over the reported (post-warm-up) tokens of every repetition, so they equal the per-token rows.
        int tokens = events.Count;
        double seconds = events.Sum(e => e.WallMs) / 1e3;
        bool prefetching = last!.Prefetch != "none";
        return new CellResult
        {
            CellId = cell.CellId,
            IoMode = cell.IoMode,
            BudgetBytes = cell.BudgetBytes,
            Tokens = tokens,
            Seconds = seconds,
            TokensPerSecond = seconds > 0 ? tokens / seconds : 0,
            BytesRead = events.Sum(e => e.BytesRead),
            ExpertHits = events.Sum(e => (long)e.Hits),
            ExpertMisses = events.Sum(e => (long)e.Misses),
            PrefetchHits = events.Sum(e => (long)e.PrefetchHits),
            IoSeconds = events.Sum(e => e.IoMs) / 1e3,
            ComputeSeconds = events.Sum(e => e.ComputeMs) / 1e3,
            StallSeconds = events.Sum(e => e.StallMs) / 1e3,
            PrefetchPrecision = prefetching ? last.PrefetchPrecision : null,
            PrefetchRecall = prefetching ? last.PrefetchRecall : null,
            TokenEvents = events.ToArray(),
            ExpertsByLayer = LayerExpertCounts.Of(layerHits, layerMisses, layerPrefetchHits),
            Source = "simulator:" + ProfileName,
        };
    }

    private SimulationSetup Setup(RunCell cell)
    {
        if (string.IsNullOrEmpty(cell.Trace)) throw new ArgumentException($"cell {cell.CellId}: a sim target needs a routing trace (trace: in the experiment)");
        if (cell.Precision is not ("native" or ""))
            throw new NotSupportedException($"cell {cell.CellId}: precision '{cell.Precision}' is not simulated (a trace has no per-precision sizes yet); use native");
        if (cell.Routing is not ("unchanged" or ""))
            throw new NotSupportedException($"cell {cell.CellId}: routing '{cell.Routing}' changes the router's choices, which a recorded trace cannot replay; use unchanged");
        if (cell.IoMode is not ("direct" or "buffered")) throw new ArgumentException($"cell {cell.CellId}: io mode '{cell.IoMode}' is not direct or buffered");
        ModelPreset? preset = cell.ModelPreset is null ? null : SimulationSetup.FindPreset(cell.ModelPreset);
        int? layers = preset?.MoeLayerCount;
        var trace = _traces.GetOrAdd((cell.Trace, cell.TraceFormat, layers), k => TraceFiles.Load(k.Item1, k.Item2, k.Item3));
        preset ??= SimulationSetup.PresetOf(trace)
            ?? throw new ArgumentException($"cell {cell.CellId}: no model preset (set model_preset, or record the trace with a 'model' header)");
        var io = StrategySpec.Parse(cell.Io);
        int? depth = io.Parameters.TryGetValue("queue_depth", out string? qd) && int.TryParse(qd, out int d) && d > 0 ? d : null;
        var setup = new SimulationSetup
        {
            Trace = trace,
            Preset = preset,
            Profile = Profile,
            Cache = StrategySpec.Parse(cell.Cache),
            Prefetch = StrategySpec.Parse(cell.Prefetch),
            Unit = CacheUnit.Bytes,
            PageCache = cell.IoMode == "buffered",
            QueueDepth = depth,
            MaxTokens = cell.WarmupTokens + cell.GenerateTokens,
            RecordTokens = true,
        };
        setup.CheckShape();
        if (trace.Tokens < cell.WarmupTokens + cell.GenerateTokens)
            throw new ArgumentException($"cell {cell.CellId}: the trace has {trace.Tokens} tokens; warm-up {cell.WarmupTokens} + generate {cell.GenerateTokens} needs more");
        // Build the strategies once so a bad name or parameter fails here, before anything runs.
        _ = Simulator.Run(setup.Options() with { MaxTokens = 0, RecordTokens = false }, Capacity(cell, setup));
        return setup;
    }

    private long Capacity(RunCell cell, SimulationSetup setup)
    {
        if (cell.BudgetBytes is { } b) return b;
        return setup.PageCache ? Profile.Memory.AvailableToModelBytes : setup.Preset!.TotalExpertBytes(setup.ExpertType);
    }
}
