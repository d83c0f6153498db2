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

    /// <summary>Longest list of predictions taken from the prefetcher per layer.</summary>
    public int MaxPrefetchPerLayer { get; init; } = 32;
}
