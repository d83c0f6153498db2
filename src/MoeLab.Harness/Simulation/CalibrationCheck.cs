using System.Globalization;
using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;
using MoeLab.Harness.Traces;
using MoeLab.Strategies;

namespace MoeLab.Harness.Simulation;

/// <summary>What <c>moelab calibrate --check</c> runs: an engine run to record and measure, and the profile to predict it with.</summary>
public sealed record CalibrationCheckOptions
{
    public required string ModelPath { get; init; }

    /// <summary>Engine settings: a budget is required (without one nothing streams and there is nothing to check).</summary>
    public required EngineSettings Settings { get; init; }

    public required IReadOnlyList<string> Prompts { get; init; }

    public int Tokens { get; init; } = 32;

    /// <summary>The stored profile (memory, and disk and compute when no probe is taken).</summary>
    public required DeviceProfile Profile { get; init; }

    /// <summary>When to probe the disk and compute for the prediction: before and/or after the engine run, or never.</summary>
    public ProbeTiming Probe { get; init; } = ProbeTiming.Both;

    public double ProbeSecondsPerPoint { get; init; } = 0.6;

    /// <summary>
    /// With a probe before the run: pause the engine after every this many generated tokens for a short disk probe, and
    /// predict each segment with the two probes that bracket it (0 = the before and after probes for the whole run).
    /// </summary>
    public int SegmentTokens { get; init; }
}

/// <summary>Probes around the engine run: their figures (averaged) replace the stored profile's disk and compute.</summary>
[Flags]
public enum ProbeTiming
{
    None = 0,
    Before = 1,
    After = 2,
    Both = Before | After,
}

/// <summary>The same decode tokens, measured by the engine and predicted by the simulator.</summary>
public sealed record CalibrationFigures
{
    public int Tokens { get; init; }

    public double Seconds { get; init; }

    public long Hits { get; init; }

    public long Misses { get; init; }

    /// <summary>Of <see cref="Hits"/>, demands a prefetch had brought in (or had in flight).</summary>
    public long PrefetchHits { get; init; }

    /// <summary>Engine only: summed issue-of-first-slice to landing-of-last time of its expert reads (ExpertSourceCounters.IoSeconds).</summary>
    public double ExpertReadSeconds { get; init; }

    /// <summary>Engine only: expert reads started in these tokens (misses and prefetches).</summary>
    public long ExpertReads { get; init; }

    /// <summary>Engine only: wake-up of a reader for a demand made while none was busy (IdleIssueSeconds), and how many.</summary>
    public double IdleIssueSeconds { get; init; }

    public long IdleIssues { get; init; }

    /// <summary>Engine only: queued prefetches dropped unread because their layer had passed (fifo's cancel_stale).</summary>
    public long PrefetchCancelled { get; init; }

    public long BytesRead { get; init; }

    /// <summary>Engine: wall time minus expert waits; simulator: dense + expert compute.</summary>
    public double ComputeSeconds { get; init; }

    public double StallSeconds { get; init; }

    /// <summary>Engine: wall time with at least one read in flight; simulator: the reads' charged time.</summary>
    public double IoBusySeconds { get; init; }

    /// <summary>
    /// Engine: its attention layers and output head (its own timers); simulator: the dense weights' term and the
    /// per-token overhead (attention, router, shared expert and head matrices together).
    /// </summary>
    public double DenseSeconds { get; init; }

    /// <summary>Simulator: expert reads the storage cache below the disk served.</summary>
    public long StorageCacheHits { get; init; }

    public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;

    public double HitRatio => Hits + Misses == 0 ? 0 : Hits / (double)(Hits + Misses);
}

/// <summary>A stretch of the run's decode tokens between two probes, predicted with those two probes' disk figures.</summary>
public sealed record CalibrationSegment
{
    public required int FirstDecodeToken { get; init; }

    public required CalibrationFigures Measured { get; init; }

    public required CalibrationFigures Predicted { get; init; }

    /// <summary>The probes right before and right after the segment (the run's before/after probes at its ends; no after probe = the left one only).</summary>
    public required IReadOnlyList<CalibrationProbe.Figures> Brackets { get; init; }

    /// <summary>How far apart the bracketing probes read at the top depth: slower / faster − 1 (0 with one probe).</summary>
    public double BracketSpread => Brackets.Count < 2 ? 0 : Spread(Brackets[0], Brackets[^1]);

    public double Error => Measured.TokensPerSecond > 0 ? (Predicted.TokensPerSecond / Measured.TokensPerSecond) - 1 : double.NaN;

    public static double Spread(CalibrationProbe.Figures a, CalibrationProbe.Figures b)
    {
        double x = TopDepthLatencyUs(a), y = TopDepthLatencyUs(b);
        return (Math.Max(x, y) / Math.Min(x, y)) - 1;
    }

    /// <summary>A probe's read latency at its top depth, as read over the whole file (the device's if it took no whole-file reads).</summary>
    public static double TopDepthLatencyUs(CalibrationProbe.Figures f) => (f.FileReads.Count > 0 ? f.FileReads[^1] : f.Reads[^1]).LatencyUs;
}

public sealed record CalibrationCheckResult
{
    public required CalibrationCheckOptions Options { get; init; }

    public required CostModel Cost { get; init; }

    public required CalibrationFigures Measured { get; init; }

    /// <summary>From <see cref="Profile"/> and the recorded trace only: the engine run's timings are not an input.</summary>
    public required CalibrationFigures Predicted { get; init; }

    /// <summary>The profile the prediction used: the stored one, or the probes' (with the stored one's memory).</summary>
    public required DeviceProfile Profile { get; init; }

    public IReadOnlyList<CalibrationProbe.Figures> Probes { get; init; } = [];

    /// <summary>
    /// With <see cref="CalibrationCheckOptions.SegmentTokens"/>: the segments, each predicted with its bracketing probes;
    /// <see cref="Predicted"/> is then their sum, and <see cref="PredictedWithoutSegments"/> the whole run with the
    /// before and after probes averaged.
    /// </summary>
    public IReadOnlyList<CalibrationSegment> Segments { get; init; } = [];

    public CalibrationFigures? PredictedWithoutSegments { get; init; }

    /// <summary>The same prediction with no reader wake-up charged (when the profile has one), to show what it adds.</summary>
    public CalibrationFigures? PredictedWithoutWake { get; init; }

    /// <summary>The same prediction with prefetch reads at the idle rate (null without prefetching or a slowdown).</summary>
    public CalibrationFigures? PredictedWithoutReadSlowdown { get; init; }

    /// <summary>The same prediction with the probes' compute resumption cost after a stall charged (null without probes).</summary>
    public CalibrationFigures? PredictedWithResume { get; init; }

    /// <summary>The largest spread of a segment's bracketing probes (0 without segments).</summary>
    public double LargestBracketSpread => Segments.Count == 0 ? 0 : Segments.Max(s => s.BracketSpread);

    /// <summary>The same replay with the stored profile's figures, when a probe replaced them (to show what the probe changed).</summary>
    public CalibrationFigures? PredictedWithStoredProfile { get; init; }

    public required string IoMode { get; init; }

    /// <summary>
    /// Bytes read over the whole run, prompt tokens included (engine: after its reads finished; simulator: every read
    /// it issued). With prefetching, the decode tokens' bytes differ at the edges: the engine counts a read when it
    /// completes, the simulator when it is issued, so a guess made at a prompt's last token lands in the other phase.
    /// </summary>
    public long MeasuredRunBytes { get; init; }

    public long PredictedRunBytes { get; init; }

    public long CacheCapacityBytes { get; init; }

    /// <summary>1-, 5- and 15-minute load averages when the run ended (a figure from a busy machine is noisy).</summary>
    public required string LoadAverage { get; init; }

    /// <summary>Predicted over measured tokens/s, minus one: +0.10 = the simulator predicts 10% faster than the engine ran.</summary>
    public double TokensPerSecondError => Error(Predicted);

    public double Error(CalibrationFigures predicted) => Measured.TokensPerSecond > 0 ? (predicted.TokensPerSecond / Measured.TokensPerSecond) - 1 : double.NaN;

    /// <summary>Hits, misses and bytes read agree exactly (same trace, same policy classes, same capacity).</summary>
    public bool CountsMatch => Measured.Hits == Predicted.Hits && Measured.Misses == Predicted.Misses && Measured.PrefetchHits == Predicted.PrefetchHits &&
        MeasuredRunBytes == PredictedRunBytes && (Options.Settings.Prefetch != "none" || Measured.BytesRead == Predicted.BytesRead);
}

/// <summary>
/// Checks the simulator against the engine on this machine: records a trace from a real engine run under a budget
/// and strategy (direct reads, so the disk is really read), replays that trace through the simulator with the same
/// cache policy class, capacity and a cost model built from the device profile and the model file's own shape, and
/// compares the decode tokens' tokens/s, hit ratio and bytes read. Only decode tokens count; prompt tokens are
/// replayed too (they fill the cache in both), but neither side times them. By default the disk and compute figures
/// come from <see cref="CalibrationProbe"/> microbenchmarks taken right before and right after the run (averaged),
/// because this machine's disk and CPUs drift between a calibration and a check; the run's own timings never enter
/// the prediction.
/// </summary>
public static class CalibrationCheck
{
    public static CalibrationCheckResult Run(CalibrationCheckOptions o)
    {
        if (o.Settings.BudgetBytes is null) throw new ArgumentException("the check needs a budget (--budget): with every expert resident nothing streams");
        var probes = new List<CalibrationProbe.Figures>();
        var probe = new CalibrationProbe.Options
        {
            QueueDepth = QueueDepthOf(o.Settings), Threads = o.Settings.Threads, SecondsPerPoint = o.ProbeSecondsPerPoint, ReadChunkBytes = o.Settings.ReadChunkBytes,
        };
        if (o.Probe.HasFlag(ProbeTiming.Before)) probes.Add(CalibrationProbe.Measure(o.ModelPath, probe));
        // Between segments: a disk-only probe in the before probe's bursts (the disk drifts within a run; compute less so).
        var between = new List<CalibrationProbe.Figures>();
        Action<int>? pause = o.SegmentTokens > 0 && probes.Count > 0 ? _ => between.Add(CalibrationProbe.MeasureDisk(o.ModelPath, probe, probes[0])) : null;
        // next-gate needs the hidden state, which a trace has not: record the engine's guesses beside the run (one router
        // matvec per layer) and replay them (RecordedNextGate).
        bool nextGate = IsNextGate(o.Settings.Prefetch);
        var run = TraceRecording.Record(new TraceRecordOptions { ModelPath = o.ModelPath, Settings = o.Settings, Prompts = o.Prompts, Tokens = o.Tokens, Pause = pause, PauseEvery = o.SegmentTokens, NextGate = nextGate });
        string load = LoadAverage();
        if (o.Probe.HasFlag(ProbeTiming.After)) probes.Add(CalibrationProbe.Measure(o.ModelPath, probe with { QueueDepth = run.QueueDepth }));
        return Compare(o, run, load, probes, pause is null ? null : between);
    }

    /// <summary>
    /// Replays a recorded run and sets the simulator's figures beside the engine's. With <paramref name="between"/>
    /// (the disk probes taken every <see cref="CalibrationCheckOptions.SegmentTokens"/> decode tokens; <paramref name="probes"/>
    /// = before[, after]), each segment is predicted from the probes bracketing it, compute from the before/after average.
    /// </summary>
    public static CalibrationCheckResult Compare(CalibrationCheckOptions o, TraceRecordingResult run, string loadAverage, IReadOnlyList<CalibrationProbe.Figures>? probes = null, IReadOnlyList<CalibrationProbe.Figures>? between = null)
    {
        probes ??= [];
        var profile = probes.Count > 0 ? CalibrationProbe.Profile(o.Profile, o.ModelPath, probes) : o.Profile;
        var (cost, predicted, runBytes) = Predict(o, run, profile);
        CalibrationFigures? stored = probes.Count > 0 ? Predict(o, run, o.Profile).Predicted : null;
        var withoutWake = profile.Storage.ReaderWakeUs > 0 ? PredictWith(p => p.Storage.ReaderWakeUs = 0) : null;
        // A diagnostic: the probes' compute resumption after a stall charged (profiles leave it at 0 until it predicts better).
        var withResume = probes.Count > 0 && probes.Average(f => f.ResumeAfterStallUs) > 0
            ? PredictWith(p => p.Compute.ResumeAfterStallUs = Math.Round(probes.Average(f => f.ResumeAfterStallUs), 1))
            : null;
        var withoutSlowdown = profile.Storage.ReadSlowdownUnderCompute > 1 && o.Settings.Prefetch != "none" ? PredictWith(p => p.Storage.ReadSlowdownUnderCompute = 0) : null;

        var measured = Measure(run);
        var segments = new List<CalibrationSegment>();
        CalibrationFigures? whole = null;
        if (between is not null && probes.Count > 0 && o.SegmentTokens > 0)
        {
            // Probe k (0 = before) is followed by segment k; the after probe, if any, closes the last one.
            var left = new List<CalibrationProbe.Figures> { probes[0] };
            left.AddRange(between);
            var after = o.Probe.HasFlag(ProbeTiming.After) && probes.Count > 1 ? probes[^1] : null;
            for (int k = 0; k < left.Count; k++)
            {
                var right = k + 1 < left.Count ? left[k + 1] : after;
                IReadOnlyList<CalibrationProbe.Figures> brackets = right is null ? [left[k]] : [left[k], right];
                var segmentProfile = CalibrationProbe.Profile(o.Profile, o.ModelPath, brackets);
                segmentProfile.Compute = profile.Compute; // compute is probed before and after only
                int from = k * o.SegmentTokens, to = k + 1 < left.Count ? from + o.SegmentTokens : int.MaxValue;
                segments.Add(new CalibrationSegment
                {
                    FirstDecodeToken = from, Brackets = brackets, Measured = Measure(run, from, to), Predicted = Predict(o, run, segmentProfile, from, to).Predicted,
                });
            }

            whole = predicted;
            predicted = Sum(segments.Select(x => x.Predicted));
        }

        return new CalibrationCheckResult
        {
            Options = o, Cost = cost, Measured = measured, Predicted = predicted, Profile = profile, Probes = probes, PredictedWithStoredProfile = stored,
            IoMode = run.IoModeLabel, CacheCapacityBytes = run.CacheCapacityBytes ?? 0, LoadAverage = loadAverage, Segments = segments, PredictedWithoutSegments = whole,
            MeasuredRunBytes = run.RunCounters?.BytesRead ?? 0, PredictedRunBytes = runBytes, PredictedWithoutWake = withoutWake, PredictedWithResume = withResume, PredictedWithoutReadSlowdown = withoutSlowdown,
        };

        // The same replay with one figure of a copy of the profile changed (the diagnostic lines beside the prediction).
        CalibrationFigures PredictWith(Action<DeviceProfile> change)
        {
            var copy = DeviceProfile.Parse(profile.ToYaml(), profile.Name);
            change(copy);
            return Predict(o, run, copy).Predicted;
        }
    }

    private static CalibrationFigures Sum(IEnumerable<CalibrationFigures> parts) => parts.Aggregate(new CalibrationFigures(), (a, b) => new CalibrationFigures
    {
        Tokens = a.Tokens + b.Tokens, Seconds = a.Seconds + b.Seconds, Hits = a.Hits + b.Hits, PrefetchHits = a.PrefetchHits + b.PrefetchHits, PrefetchCancelled = a.PrefetchCancelled + b.PrefetchCancelled, Misses = a.Misses + b.Misses, BytesRead = a.BytesRead + b.BytesRead,
        ComputeSeconds = a.ComputeSeconds + b.ComputeSeconds, StallSeconds = a.StallSeconds + b.StallSeconds, IoBusySeconds = a.IoBusySeconds + b.IoBusySeconds,
        DenseSeconds = a.DenseSeconds + b.DenseSeconds, StorageCacheHits = a.StorageCacheHits + b.StorageCacheHits,
    });

    /// <summary>The engine's next-gate prefetcher as the recorded guesses reproduce it: distance 1, the model's experts per token.</summary>
    private static bool IsNextGate(string prefetch)
    {
        var spec = StrategySpec.Parse(prefetch);
        if (spec.Name != "next-gate") return false;
        if (spec.Parameters.Keys.Any(k => k is "distance" or "top"))
        {
            throw new ArgumentException("next-gate: the check replays the guesses the recorder makes (distance 1, the model's experts per token); drop distance/top");
        }

        return true;
    }

    /// <summary>The I/O scheduler's reader threads for these settings (the engine's own figure is taken after the run).</summary>
    public static int QueueDepthOf(EngineSettings settings) =>
        StrategyCatalog.CreateIo(StrategySpec.Parse(settings.Io), new StrategyContext { Shape = new ModelShape(1, 1, 1, 1, 0) }).QueueDepth;

    /// <summary>The replay's decode tokens <paramref name="from"/> (inclusive) to <paramref name="to"/> (exclusive), counted over all prompts.</summary>
    private static (CostModel Cost, CalibrationFigures Predicted, long RunBytes) Predict(CalibrationCheckOptions o, TraceRecordingResult run, DeviceProfile profile, int from = 0, int to = int.MaxValue)
    {
        var cost = CostFor(o.ModelPath, profile, run.QueueDepth, o.Settings.ReadChunkBytes);
        long capacity = run.CacheCapacityBytes ?? throw new ArgumentException("the recorded run had no budget");
        var sim = Simulator.Run(new SimulationOptions
        {
            Trace = run.Trace,
            Cache = StrategySpec.Parse(o.Settings.Cache),
            Prefetch = o.Settings.Prefetch == "none" ? null : StrategySpec.Parse(o.Settings.Prefetch),
            PrefetchFactory = IsNextGate(o.Settings.Prefetch)
                ? _ => new RecordedNextGate(run.NextGate ?? throw new ArgumentException("next-gate: the run recorded no guesses (TraceRecordOptions.NextGate)"))
                : null,
            Unit = CacheUnit.Bytes,
            Scope = CacheScope.Global,
            ExpertBytes = cost.ExpertBytes,
            Cost = cost,
            RecordTokens = true,
        }, capacity);

        int tokens = 0, decode = -1;
        long hits = 0, misses = 0, bytes = 0, below = 0, prefetchHits = 0;
        double compute = 0, stall = 0, io = 0;
        for (int t = 0; t < sim.PerToken!.Length; t++)
        {
            if (!run.IsDecode(t)) continue;
            decode++;
            if (decode < from || decode >= to) continue;
            var r = sim.PerToken[t];
            tokens++;
            hits += r.Hits;
            prefetchHits += r.PrefetchHits;
            misses += r.Misses;
            bytes += r.BytesRead;
            compute += r.ComputeSeconds;
            stall += r.StallSeconds;
            io += r.IoSeconds;
            below += r.StorageCacheHits;
        }

        return (cost, new CalibrationFigures { DenseSeconds = tokens * cost.DenseSecondsPerToken, StorageCacheHits = below, IoBusySeconds = io, Tokens = tokens, Seconds = compute + stall, Hits = hits, PrefetchHits = prefetchHits, Misses = misses, BytesRead = bytes, ComputeSeconds = compute, StallSeconds = stall }, sim.BytesRead ?? 0);
    }

    /// <summary>The engine's decode tokens <paramref name="from"/> to <paramref name="to"/> (exclusive); attention and head only for the whole run.</summary>
    private static CalibrationFigures Measure(TraceRecordingResult run, int from = 0, int to = int.MaxValue)
    {
        int tokens = 0, decode = -1;
        long hits = 0, misses = 0, bytes = 0, prefetchHits = 0, cancelled = 0, idleIssues = 0, reads = 0;
        double seconds = 0, stall = 0, io = 0, readSeconds = 0, idleIssue = 0;
        foreach (var s in run.DecodeSteps)
        {
            decode++;
            if (decode < from || decode >= to) continue;
            tokens++;
            hits += s.Experts.Hits + s.Experts.PrefetchHits;
            prefetchHits += s.Experts.PrefetchHits;
            cancelled += s.Experts.PrefetchCancelled;
            readSeconds += s.Experts.IoSeconds;
            reads += s.Experts.Misses + s.Experts.PrefetchIssued;
            idleIssue += s.Experts.IdleIssueSeconds;
            idleIssues += s.Experts.IdleIssues;
            misses += s.Experts.Misses;
            bytes += s.Experts.BytesRead;
            seconds += s.WallSeconds;
            stall += s.StallSeconds;
            io += s.Experts.IoBusySeconds;
        }

        return new CalibrationFigures { DenseSeconds = from == 0 && to == int.MaxValue ? run.DecodeAttentionSeconds + run.DecodeHeadSeconds : 0, IoBusySeconds = io, Tokens = tokens, Seconds = seconds, Hits = hits, PrefetchHits = prefetchHits, PrefetchCancelled = cancelled, ExpertReadSeconds = readSeconds, ExpertReads = reads, IdleIssueSeconds = idleIssue, IdleIssues = idleIssues, Misses = misses, BytesRead = bytes, ComputeSeconds = seconds - stall, StallSeconds = stall };
    }

    /// <summary>
    /// The cost model for a model file on a device: expert bytes from the file's expert layout, dense bytes per token
    /// = every weight a decode step reads outside the routed experts (all tensors but the experts and the token
    /// embedding, of which one row is read), reads as the engine's <see cref="ExpertStore"/> issues them (one per
    /// gate/up/down slice, or pieces of <paramref name="readChunkBytes"/>) at the engine's queue depth.
    /// </summary>
    public static CostModel CostFor(string modelPath, DeviceProfile profile, int queueDepth, long readChunkBytes = 0)
    {
        var file = GgufFile.Open(modelPath);
        var config = ModelConfig.FromGguf(file);
        var layout = ExpertTensors.Layout(file, config);
        long dense = file.Tensors.Where(t => !ExpertTensors.IsRoutedExpert(t) && t.Name != "token_embd.weight").Sum(t => t.ByteSize);
        if (file.FindTensor("output.weight") is null && file.FindTensor("token_embd.weight") is { } tied) dense += tied.ByteSize; // tied output head
        long slice;
        using (var store = new ExpertStore(layout, IoMode.Direct, readChunkBytes)) slice = CalibrationProbe.ReadBlockBytes(store);
        return new CostModel
        {
            ProfileName = profile.Name,
            Storage = new StorageModel(profile.Storage.Reads),
            CachedStorage = profile.Storage.Cache is { } c ? new StorageModel(c.Reads) : null,
            StorageCacheBytes = profile.Storage.Cache?.Bytes ?? 0,
            ExpertBytes = layout.MaxExpertBytes,
            DenseBytesPerToken = dense,
            ExpertBytesPerSecond = profile.Compute.ExpertGbPerS * 1e9,
            DenseBytesPerSecond = profile.Compute.DenseGbPerS * 1e9,
            PerTokenOverheadSeconds = profile.Compute.PerTokenOverheadMs * 1e-3,
            ResumeAfterStallSeconds = profile.Compute.ResumeAfterStallUs * 1e-6,
            PrefetchReadSlowdown = Math.Max(1, profile.Storage.ReadSlowdownUnderCompute),
            BlockBytes = slice,
            QueueDepth = Math.Max(1, queueDepth),
            ReaderWakeSeconds = profile.Storage.ReaderWakeUs * 1e-6,
            RamBytes = profile.Memory.AvailableToModelBytes,
        };
    }

    public static string LoadAverage()
    {
        try
        {
            string[] f = File.ReadAllText("/proc/loadavg").Split(' ');
            return string.Join(' ', f.Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
        catch (UnauthorizedAccessException)
        {
            return "unknown";
        }
    }

    public static string Table(CalibrationCheckResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        var m = r.Measured;
        var p = r.Predicted;
        var sb = new System.Text.StringBuilder();
        sb.Append(string.Create(inv, $"model {Path.GetFileName(r.Options.ModelPath)}; budget {r.Options.Settings.BudgetBytes / 1048576.0:F1} MiB (cache {r.CacheCapacityBytes / 1048576.0:F1} MiB = {r.CacheCapacityBytes / r.Cost.ExpertBytes} experts of {r.Cost.ExpertBytes / 1e6:F3} MB); cache {r.Options.Settings.Cache}, prefetch {r.Options.Settings.Prefetch}, io {r.IoMode}\n"));
        sb.Append(string.Create(inv, $"cost model ({r.Cost.ProfileName}): dense {r.Cost.DenseBytesPerToken / 1e6:F1} MB/token at {r.Cost.DenseBytesPerSecond / 1e9:F2} GB/s + {r.Cost.PerTokenOverheadSeconds * 1e3:F2} ms, experts at {r.Cost.ExpertBytesPerSecond / 1e9:F2} GB/s, {r.Cost.ReadsPerExpert} reads of {r.Cost.BlockBytes / 1024.0:F0} KiB per expert at depth {r.Cost.QueueDepth}, {r.Cost.ReaderWakeSeconds * 1e6:F0} µs to wake an idle reader, {r.Cost.ResumeAfterStallSeconds * 1e6:F0} µs of compute per resumption after a stall, prefetch reads ×{r.Cost.PrefetchReadSlowdown:F2}"));
        sb.Append(r.Cost.HasStorageCache ? string.Create(inv, $", storage cache {r.Cost.StorageCacheBytes / 1048576.0:F0} MiB below the disk ({r.Predicted.StorageCacheHits} of the decode tokens' expert reads served by it)\n") : ", no storage cache\n");
        foreach (var f in r.Probes) sb.Append(ProbeText(f));
        if (r.Segments.Count > 1)
        {
            sb.Append(string.Create(inv, $"{r.Segments.Count - 1} disk probes between segments of {r.Options.SegmentTokens} decode tokens (the engine paused, its readers idle; compute from the probes above)\n"));
        }

        sb.Append(r.Probes.Count > 0
            ? r.Segments.Count > 0
                ? "measured = the engine run; predicted = the simulator from the recorded trace, each segment with the probes bracketing it, summed (the engine run's timings are not an input)\n"
                : "measured = the engine run; predicted = the simulator from the recorded trace and the probes' figures (averaged; the engine run's timings are not an input)\n"
            : $"measured = the engine run; predicted = the simulator from the recorded trace and profile '{r.Profile.Name}' as stored\n");
        sb.Append("                 measured   predicted\n");
        sb.Append(string.Create(inv, $"tokens           {m.Tokens,8}   {p.Tokens,9}\n"));
        sb.Append(string.Create(inv, $"tokens/s         {m.TokensPerSecond,8:F2}   {p.TokensPerSecond,9:F2}   error {r.TokensPerSecondError,7:+0.0%;-0.0%}\n"));
        if (r.PredictedWithoutSegments is { } whole)
        {
            sb.Append(string.Create(inv, $"  without segments         {whole.TokensPerSecond,9:F2}   error {r.Error(whole),7:+0.0%;-0.0%}   (before and after probes averaged over the whole run)\n"));
        }

        if (r.PredictedWithoutReadSlowdown is { } noSlowdown)
        {
            sb.Append(string.Create(inv, $"  prefetch reads at idle rate {noSlowdown.TokensPerSecond,6:F2}   error {r.Error(noSlowdown),7:+0.0%;-0.0%}   (stall {noSlowdown.StallSeconds / Math.Max(1, noSlowdown.Tokens):F4} s/token)\n"));
        }

        if (r.PredictedWithResume is { } resume)
        {
            sb.Append(string.Create(inv, $"  with compute resume      {resume.TokensPerSecond,9:F2}   error {r.Error(resume),7:+0.0%;-0.0%}   (compute {resume.ComputeSeconds / Math.Max(1, resume.Tokens):F4} s/token; the probes' resumption after a stall charged, not used)\n"));
        }

        if (r.PredictedWithoutWake is { } noWake)
        {
            sb.Append(string.Create(inv, $"  without reader wake-up   {noWake.TokensPerSecond,9:F2}   error {r.Error(noWake),7:+0.0%;-0.0%}\n"));
        }

        if (r.PredictedWithStoredProfile is { } stored)
        {
            sb.Append(string.Create(inv, $"  with {r.Options.Profile.Name} as stored        {stored.TokensPerSecond,9:F2}   error {r.Error(stored),7:+0.0%;-0.0%}\n"));
        }

        foreach (var g in r.Segments)
        {
            sb.Append(string.Create(inv, $"  segment from decode token {g.FirstDecodeToken,3}: {g.Measured.Tokens,3} tokens, {g.Measured.TokensPerSecond,7:F2} measured, {g.Predicted.TokensPerSecond,7:F2} predicted, error {g.Error,7:+0.0%;-0.0%}; bracketing probes read at "));
            sb.Append(string.Join(" / ", g.Brackets.Select(b => string.Create(inv, $"{CalibrationSegment.TopDepthLatencyUs(b):F0}"))));
            sb.Append(string.Create(inv, $" µs (depth {r.Cost.QueueDepth})"));
            sb.Append(g.BracketSpread > 0.15 ? string.Create(inv, $", DIFFER by {g.BracketSpread:0%}: more than the ±15% tolerance\n") : "\n");
        }

        sb.Append(string.Create(inv, $"compute s/token  {m.ComputeSeconds / Math.Max(1, m.Tokens),8:F4}   {p.ComputeSeconds / Math.Max(1, p.Tokens),9:F4}\n"));
        sb.Append(string.Create(inv, $"  attn+head      {m.DenseSeconds / Math.Max(1, m.Tokens),8:F4}   {p.DenseSeconds / Math.Max(1, p.Tokens),9:F4}   (engine: its attention layers' and output head's timers; simulator: dense weights + per-token overhead)\n"));
        sb.Append(string.Create(inv, $"  rest           {(m.ComputeSeconds - m.DenseSeconds) / Math.Max(1, m.Tokens),8:F4}   {(p.ComputeSeconds - p.DenseSeconds) / Math.Max(1, p.Tokens),9:F4}   (engine: routers, experts; simulator: experts)\n"));
        sb.Append(string.Create(inv, $"stall s/token    {m.StallSeconds / Math.Max(1, m.Tokens),8:F4}   {p.StallSeconds / Math.Max(1, p.Tokens),9:F4}\n"));
        if (m.Misses > 0)
        {
            // Diagnostics of the engine's own reads (not used by the prediction): how long an expert's read took from
            // its first slice's issue to its last slice's landing, and how long an idle reader took to wake for a demand.
            sb.Append(string.Create(inv, $"  engine reads: {m.ExpertReadSeconds / Math.Max(1, m.ExpertReads) * 1e3:F2} ms per expert read (issue to landing, mean), idle reader wake-up {m.IdleIssueSeconds / Math.Max(1, m.IdleIssues) * 1e6:F0} µs × {m.IdleIssues}\n"));
        }

        sb.Append(string.Create(inv, $"disk busy s/token{m.IoBusySeconds / Math.Max(1, m.Tokens),8:F4}   {p.IoBusySeconds / Math.Max(1, p.Tokens),9:F4}\n"));
        sb.Append(string.Create(inv, $"hit ratio        {m.HitRatio,8:P2}   {p.HitRatio,9:P2}   {(m.Hits == p.Hits && m.Misses == p.Misses ? "equal" : "DIFFER")} ({m.Hits}/{m.Misses} vs {p.Hits}/{p.Misses} hits/misses)\n"));
        if (m.PrefetchHits + p.PrefetchHits > 0)
        {
            sb.Append(string.Create(inv, $"prefetch hits    {m.PrefetchHits,8}   {p.PrefetchHits,9}   {(m.PrefetchHits == p.PrefetchHits ? "equal" : "DIFFER")} (of the hits)\n"));
            if (m.PrefetchCancelled > 0)
            {
                sb.Append(string.Create(inv, $"  the engine dropped {m.PrefetchCancelled} queued prefetches whose layer had passed (cancel_stale); the simulator issues every one, so counts differ: --io-scheduler fifo:cancel_stale=false compares like with like\n"));
            }
        }

        sb.Append(string.Create(inv, $"bytes read       {m.BytesRead,8}   {p.BytesRead,9}   {(m.BytesRead == p.BytesRead ? "equal" : "DIFFER")}\n"));
        if (r.Options.Settings.Prefetch != "none")
        {
            sb.Append(string.Create(inv, $"  whole run      {r.MeasuredRunBytes,8}   {r.PredictedRunBytes,9}   {(r.MeasuredRunBytes == r.PredictedRunBytes ? "equal" : "DIFFER")} (prompts included: the engine counts a read when it lands, the simulator when it is issued)\n"));
        }

        sb.Append($"load average     {r.LoadAverage} (1, 5, 15 min; {Environment.ProcessorCount} CPUs)\n");
        return sb.ToString();
    }

    /// <summary>One probe's figures, as the check's table and <c>moelab calibrate</c> print them.</summary>
    public static string ProbeText(CalibrationProbe.Figures f)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new System.Text.StringBuilder();
        sb.Append(string.Create(inv, $"probe {f.TakenUtc:HH:mm:ss} ({f.Seconds:F1} s): {f.ForwardTokens} decode steps: experts {f.ExpertGbPerS:F2} GB/s, dense {f.DenseGbPerS:F2} GB/s, resume after a stall {f.ResumeAfterStallUs:F0} µs; reads beside the decode ×{f.ReadSlowdownUnderCompute:F2}; sampler {f.SamplerMs:F2} ms (not charged); reader wake-up {f.ReaderWakeUs:F0} µs; reads in bursts of {f.BurstReads}, {f.BurstGapMs:F1} ms apart: "));
        sb.Append(string.Join(", ", f.FileReads.Select(q => string.Create(inv, $"{q.BlockKib:F0} KiB × {q.QueueDepth}: {q.LatencyUs:F0} µs ({q.ReadMbPerS:F0} MB/s)"))));
        sb.Append('\n');
        if (f.Sweep.Count > 0)
        {
            sb.Append("  region sweep at depth " + f.FileReads.Max(q => q.QueueDepth) + ": ");
            sb.Append(string.Join(", ", f.Sweep.Select(x => string.Create(inv, $"{x.RegionBytes / 1e6:F0} MB {x.Seconds * 1e6:F0} µs"))));
            sb.Append(f.StorageCacheBytes > 0
                ? string.Create(inv, $" → storage cache {f.StorageCacheBytes / 1048576.0:F0} MiB; device reads ") + string.Join(", ", f.Reads.Select(q => string.Create(inv, $"× {q.QueueDepth}: {q.LatencyUs:F0} µs")))
                : " → no storage cache");
            sb.Append('\n');
        }

        if (f.SweepReads.Count > 0)
        {
            sb.Append("  block-size sweep (raw O_DIRECT ranges, same bursts): ");
            sb.Append(string.Join(", ", f.SweepReads.Concat(f.SweepAtSlice).OrderBy(q => q.QueueDepth).ThenBy(q => q.BlockKib).Select(q => string.Create(inv, $"{q.BlockKib:F0} KiB × {q.QueueDepth}: {q.LatencyUs:F0} µs{(f.SweepAtSlice.Contains(q) ? " (slice size, not stored)" : "")}"))));
            sb.Append('\n');
        }

        return sb.ToString();
    }
}
