namespace MoeLab.Engine.Policies;

public enum IoPriority : byte
{
    /// <summary>The router asked for it; compute is waiting.</summary>
    Demand,

    /// <summary>A prefetcher guessed it; nobody waits yet.</summary>
    Prefetch,
}

/// <summary>A read waiting to be issued to the SSD.</summary>
public readonly record struct PendingRead(ExpertKey Key, IoPriority Priority, long EnqueuedAt, long Bytes);

/// <summary>Orders expert reads and bounds how many are in flight.</summary>
public interface IIoScheduler
{
    string Name { get; }

    /// <summary>Reads in flight at once (the device queue depth the engine drives).</summary>
    int QueueDepth { get; }

    /// <summary>Whether a prefetch no longer wanted (its layer already passed) is dropped before it is issued.</summary>
    bool CancelStalePrefetches { get; }

    /// <summary>
    /// Prefetch reads in flight at most (1..QueueDepth): below the queue depth, a demand read that arrives while
    /// prefetches are being read still finds a reader free instead of waiting behind them.
    /// </summary>
    int PrefetchDepth => QueueDepth;

    /// <summary>Index into <paramref name="pending"/> (non-empty) of the read to issue next. No side effects.</summary>
    int PickNext(ReadOnlySpan<PendingRead> pending);
}
