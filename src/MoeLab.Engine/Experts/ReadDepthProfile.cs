namespace MoeLab.Engine.Experts;

/// <summary>
/// How full the read queue was while reads were in flight, from an <see cref="ExpertReadLog"/>'s queue, issue and
/// completion times. By Little's law rate = mean depth × mean read size / mean latency, so a rate below fio's on the
/// same reads is fewer reads in flight, slower reads, or both. Busy time with fewer than <see cref="QueueDepth"/> reads
/// in flight is split by what was waiting then: a demand read queued and not yet taken by a reader (reader wake-up and
/// turnaround), only prefetch reads (held back by the scheduler's PrefetchDepth, or turnaround), or nothing (the queue
/// ran dry: a layer's burst ended and the next router has not asked yet).
/// </summary>
/// <param name="Reads">Reads with both an issue and a completion time (the others are left out).</param>
/// <param name="BusySeconds">Time with at least one read in flight (issue to completion).</param>
/// <param name="LatencySeconds">Sum of the reads' issue-to-completion times.</param>
/// <param name="SecondsAtDepth">Busy time by reads in flight: index d for d reads (index <see cref="QueueDepth"/> for that many or more; index 0 unused).</param>
/// <param name="BelowSeconds">Busy time below the queue depth, by what was waiting: [demand, prefetch only, nothing].</param>
/// <param name="Deficit">Missing depth integrated over that time (depth-seconds), by the same split: their sum over <see cref="BusySeconds"/> is QueueDepth − MeanDepth.</param>
public sealed record ReadDepthProfile(int QueueDepth, long Reads, long Bytes, double BusySeconds, double LatencySeconds, double[] SecondsAtDepth, double[] BelowSeconds, double[] Deficit)
{
    public const int WaitingDemand = 0, WaitingPrefetch = 1, Empty = 2;

    /// <summary>Time-weighted mean reads in flight while reading: summed latency / busy time.</summary>
    public double MeanDepth => BusySeconds > 0 ? LatencySeconds / BusySeconds : 0;

    public double MeanLatencySeconds => Reads > 0 ? LatencySeconds / Reads : 0;

    public double MeanReadBytes => Reads > 0 ? (double)Bytes / Reads : 0;

    /// <summary>Bytes over busy time (the log's own "while reading" rate: its busy time is the reads', not the experts').</summary>
    public double MegabytesPerSecond => BusySeconds > 0 ? Bytes / BusySeconds / 1e6 : 0;

    /// <summary>Share of busy time with fewer than <see cref="QueueDepth"/> reads in flight.</summary>
    public double BelowFraction => BusySeconds > 0 ? (BelowSeconds[0] + BelowSeconds[1] + BelowSeconds[2]) / BusySeconds : 0;

    /// <summary>Of the depth missing on average (QueueDepth − MeanDepth), the part while <paramref name="waiting"/> (WaitingDemand, WaitingPrefetch, Empty).</summary>
    public double MissingDepth(int waiting) => BusySeconds > 0 ? Deficit[waiting] / BusySeconds : 0;

    public static ReadDepthProfile Of(ReadOnlySpan<DeviceRead> reads, int queueDepth)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(queueDepth, 1);
        // One event per queueing, issue and completion; sorted by time, swept once.
        var times = new long[reads.Length * 3];
        var kinds = new byte[reads.Length * 3];
        int n = 0;
        long count = 0, bytes = 0, latency = 0;
        foreach (var r in reads)
        {
            if (r.IssuedAt == 0 || r.CompletedAt < r.IssuedAt) continue;
            count++;
            bytes += r.Length;
            latency += r.CompletedAt - r.IssuedAt;
            byte waits = r.Prefetch ? QueuedPrefetch : QueuedDemand;
            if (r.QueuedAt != 0 && r.QueuedAt <= r.IssuedAt)
            {
                Add(r.QueuedAt, waits);
                Add(r.IssuedAt, (byte)(waits | Issued));
            }
            else
            {
                Add(r.IssuedAt, Issued);
            }

            Add(r.CompletedAt, Completed);
        }

        Array.Sort(times, kinds, 0, n);
        var atDepth = new long[queueDepth + 1];
        var below = new long[3];
        var deficit = new long[3];
        long busy = 0;
        int depth = 0, demand = 0, prefetch = 0;
        for (int i = 0; i < n; i++)
        {
            long dt = i == 0 ? 0 : times[i] - times[i - 1];
            if (depth > 0 && dt > 0)
            {
                busy += dt;
                atDepth[Math.Min(depth, queueDepth)] += dt;
                if (depth < queueDepth)
                {
                    int waiting = demand > 0 ? WaitingDemand : prefetch > 0 ? WaitingPrefetch : Empty;
                    below[waiting] += dt;
                    deficit[waiting] += (queueDepth - depth) * dt;
                }
            }

            byte k = kinds[i];
            if (k == Completed)
            {
                depth--;
                continue;
            }

            int step = (k & Issued) != 0 ? -1 : 1;
            if ((k & Issued) != 0) depth++;
            if ((k & QueuedDemand) != 0) demand += step;
            if ((k & QueuedPrefetch) != 0) prefetch += step;
        }

        double f = System.Diagnostics.Stopwatch.Frequency;
        return new ReadDepthProfile(queueDepth, count, bytes, busy / f, latency / f,
            [.. atDepth.Select(t => t / f)], [.. below.Select(t => t / f)], [.. deficit.Select(t => t / f)]);

        void Add(long at, byte kind)
        {
            times[n] = at;
            kinds[n++] = kind;
        }
    }

    /// <summary>Two profiles of the same depth as one (runs measured one after another).</summary>
    public static ReadDepthProfile operator +(ReadDepthProfile a, ReadDepthProfile b)
    {
        if (a.QueueDepth != b.QueueDepth) throw new ArgumentException($"profiles of queue depths {a.QueueDepth} and {b.QueueDepth} do not add");
        return new ReadDepthProfile(a.QueueDepth, a.Reads + b.Reads, a.Bytes + b.Bytes, a.BusySeconds + b.BusySeconds, a.LatencySeconds + b.LatencySeconds,
            Sum(a.SecondsAtDepth, b.SecondsAtDepth), Sum(a.BelowSeconds, b.BelowSeconds), Sum(a.Deficit, b.Deficit));
    }

    private static double[] Sum(double[] x, double[] y) => [.. x.Zip(y, (p, q) => p + q)];

    // Event kinds: a read queued (demand or prefetch), issued (leaving the queue it waited in, if recorded), completed.
    private const byte QueuedDemand = 1, QueuedPrefetch = 2, Issued = 4, Completed = 8;
}
