namespace MoeLab.Engine.Experts;

/// <summary>How a <see cref="StreamingExpertSource"/> spends its RAM.</summary>
public sealed record StreamingOptions
{
    /// <summary>RAM for routed experts in bytes: the cache plus the buffers of the experts in use. Never exceeded.</summary>
    public required long BudgetBytes { get; init; }

    /// <summary>
    /// Expert buffers kept outside the cache for the experts of the layer in use that the cache does not hold (the
    /// router's top-k at most); at least the experts one layer routes, so every read of a layer can be in flight at once.
    /// </summary>
    public int WorkingBuffers { get; init; } = 8;

    /// <summary>How the readers keep the queue depth in flight (threads blocked in pread, or Linux native AIO).</summary>
    public MoeLab.Engine.Io.ReadEngine ReadEngine { get; init; }

    /// <summary>
    /// Repack each arrived expert, in the reader thread, into <see cref="Kernels.WeightLayout.Interleaved8"/> where
    /// this CPU has a kernel for its type (<see cref="Kernels.RowInterleave.Worthwhile"/>), so streamed experts run
    /// the same kernels as resident ones; in place in its buffer, so the budget is unchanged. Off by default: it does not
    /// pay (bench stream-ab, 4-layer Q4_K slice: ~1.2 ms of reader CPU per 2.6 MB expert against ~0.05 ms saved per
    /// computation of it).
    /// </summary>
    public bool Interleave { get; init; }

    /// <summary>
    /// Back the expert buffers with transparent huge pages (<see cref="Kernels.WeightMemory.AllocateWithin"/>: only
    /// whole huge pages inside the budget), as the resident weights are, so computing a streamed expert walks a few
    /// TLB entries instead of one per 4 KiB.
    /// </summary>
    public bool HugePages { get; init; } = true;

    /// <summary>Longest list of predictions taken from the prefetcher per layer.</summary>
    public int MaxPrefetchPerLayer { get; init; } = 32;
}
