using System.Diagnostics;

namespace MoeLab.Engine.Experts;

/// <summary>What serving one routed expert took.</summary>
public enum ExpertOutcome : byte
{
    /// <summary>Already in RAM from an earlier demand.</summary>
    Hit,

    /// <summary>Read from the file because the router asked for it.</summary>
    Miss,

    /// <summary>In RAM (or in flight) because a prefetcher asked for it first; a late one also shows stall time.</summary>
    PrefetchHit,
}

/// <summary>One routed expert served for one token at one layer: the raw row of per-token telemetry and traces.</summary>
public readonly record struct ExpertEvent(
    int Token,
    int Layer,
    int Expert,
    float RouterWeight,
    ExpertOutcome Outcome,
    int Variant,
    long BytesRead,
    long BytesTransferred,
    double ReadMicroseconds,
    double StallMicroseconds);

/// <summary>Receives every served expert. Called on the model's thread; must not allocate or block for long.</summary>
public interface IExpertEventSink
{
    void OnExpert(in ExpertEvent e);
}

/// <summary>
/// Cumulative counters of an expert source. Take a snapshot per token and subtract for per-token deltas.
/// BytesRead counts the experts' own bytes (demand and prefetch reads); BytesTransferred what the device moved,
/// including direct-mode alignment padding. IoSeconds sums each expert read's latency (issue of its first slice to
/// completion of its last); IoBusySeconds is wall time with at least one read in flight (the I/O side of
/// max(I/O, compute)); StallSeconds is time the model spent blocked in Acquire.
/// </summary>
public readonly record struct ExpertSourceCounters(
    long Hits,
    long Misses,
    long PrefetchHits,
    long PrefetchIssued,
    long PrefetchUnused,
    long PrefetchCancelled,
    long BytesRead,
    long BytesTransferred,
    double IoSeconds,
    double IoBusySeconds,
    double StallSeconds)
{
    /// <summary>
    /// Summed over demand reads (misses, and queued prefetches a router asked for before they started): time from the
    /// demand to the issue of the expert's first read, i.e. waiting for a reader behind other reads (demand or prefetch).
    /// </summary>
    public double DemandQueueSeconds { get; init; }

    /// <summary>Demand reads counted in <see cref="DemandQueueSeconds"/>.</summary>
    public long DemandReads { get; init; }

    /// <summary>
    /// The part of <see cref="DemandQueueSeconds"/> of demands made while no read was queued or in flight: nothing to
    /// wait behind, so it is the time from the router's request to a reader thread starting the read (its wake-up).
    /// </summary>
    public double IdleIssueSeconds { get; init; }

    /// <summary>Demand reads counted in <see cref="IdleIssueSeconds"/>.</summary>
    public long IdleIssues { get; init; }

    /// <summary>
    /// Reader-thread CPU time spent repacking arrived experts into <see cref="Kernels.WeightLayout.Interleaved8"/>
    /// (after their reads, so not part of the I/O times; an expert is not ready until it is repacked).
    /// </summary>
    public double RepackSeconds { get; init; }

    /// <summary>Demand requests served (hits of either kind plus misses).</summary>
    public long Requests => Hits + Misses + PrefetchHits;

    public double HitRate => Requests == 0 ? 0 : (double)(Hits + PrefetchHits) / Requests;

    public static ExpertSourceCounters operator +(in ExpertSourceCounters a, in ExpertSourceCounters b) => new(
        a.Hits + b.Hits,
        a.Misses + b.Misses,
        a.PrefetchHits + b.PrefetchHits,
        a.PrefetchIssued + b.PrefetchIssued,
        a.PrefetchUnused + b.PrefetchUnused,
        a.PrefetchCancelled + b.PrefetchCancelled,
        a.BytesRead + b.BytesRead,
        a.BytesTransferred + b.BytesTransferred,
        a.IoSeconds + b.IoSeconds,
        a.IoBusySeconds + b.IoBusySeconds,
        a.StallSeconds + b.StallSeconds)
    {
        DemandQueueSeconds = a.DemandQueueSeconds + b.DemandQueueSeconds,
        DemandReads = a.DemandReads + b.DemandReads,
        IdleIssueSeconds = a.IdleIssueSeconds + b.IdleIssueSeconds,
        IdleIssues = a.IdleIssues + b.IdleIssues,
        RepackSeconds = a.RepackSeconds + b.RepackSeconds,
    };

    public static ExpertSourceCounters operator -(in ExpertSourceCounters a, in ExpertSourceCounters b) => new(
        a.Hits - b.Hits,
        a.Misses - b.Misses,
        a.PrefetchHits - b.PrefetchHits,
        a.PrefetchIssued - b.PrefetchIssued,
        a.PrefetchUnused - b.PrefetchUnused,
        a.PrefetchCancelled - b.PrefetchCancelled,
        a.BytesRead - b.BytesRead,
        a.BytesTransferred - b.BytesTransferred,
        a.IoSeconds - b.IoSeconds,
        a.IoBusySeconds - b.IoBusySeconds,
        a.StallSeconds - b.StallSeconds)
    {
        DemandQueueSeconds = a.DemandQueueSeconds - b.DemandQueueSeconds,
        DemandReads = a.DemandReads - b.DemandReads,
        IdleIssueSeconds = a.IdleIssueSeconds - b.IdleIssueSeconds,
        IdleIssues = a.IdleIssues - b.IdleIssues,
        RepackSeconds = a.RepackSeconds - b.RepackSeconds,
    };

    internal static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;
}
