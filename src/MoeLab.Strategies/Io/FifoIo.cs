using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Io;

/// <summary>
/// Issues reads in arrival order, demand reads before prefetches when <c>demand_first</c> (a waiting layer beats a
/// guess), at most <c>queue_depth</c> in flight, dropping prefetches whose layer has passed when <c>cancel_stale</c>.
/// </summary>
public sealed class FifoIo(bool demandFirst, int queueDepth, bool cancelStale, int prefetchDepth = 0) : IIoScheduler
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Io, "fifo", "arrival order, optionally demand reads first",
        [
            new("demand_first", "bool", "true", "issue demand reads before any prefetch"),
            new("queue_depth", "int", "4", "reads in flight at once"),
            new("cancel_stale", "bool", "true", "drop a prefetch whose layer has already run before it is issued"),
            new("prefetch_depth", "int", "queue_depth", "prefetch reads in flight at most, leaving the rest of the depth to demand reads"),
        ],
        (p, _) => new FifoIo(p.Bool("demand_first", true), p.Int("queue_depth", 4, min: 1, max: 1024), p.Bool("cancel_stale", true), p.Int("prefetch_depth", 0, min: 0, max: 1024)));

    public string Name => "fifo";

    public int QueueDepth => queueDepth;

    public bool CancelStalePrefetches => cancelStale;

    public int PrefetchDepth => prefetchDepth is > 0 ? Math.Min(prefetchDepth, queueDepth) : queueDepth;

    public int PickNext(ReadOnlySpan<PendingRead> pending)
    {
        int best = 0;
        for (int i = 1; i < pending.Length; i++)
        {
            var a = pending[i];
            var b = pending[best];
            if (demandFirst && a.Priority != b.Priority)
            {
                if (a.Priority == IoPriority.Demand) best = i;
                continue;
            }

            if (a.EnqueuedAt < b.EnqueuedAt) best = i;
        }

        return best;
    }
}
