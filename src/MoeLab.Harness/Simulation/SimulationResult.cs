namespace MoeLab.Harness.Simulation;

/// <summary>One replayed token: what the cache did and what the cost model charged (times zero without a device).</summary>
public struct TokenRecord
{
    public int Hits;
    public int Misses;
    public int PrefetchHits;

    /// <summary>Object reads served by the storage cache below the device (a VM host's cache), not the device.</summary>
    public int StorageCacheHits;
    public long BytesRead;
    public double IoSeconds;
    public double ComputeSeconds;
    public double StallSeconds;

    public readonly double WallSeconds => ComputeSeconds + StallSeconds;
}

/// <summary>The outcome of replaying a trace at one cache capacity.</summary>
public sealed record SimulationResult
{
    /// <summary>Cache capacity in <see cref="Unit"/>s (experts or bytes).</summary>
    public required long Capacity { get; init; }

    public required string Unit { get; init; }

    public required string Scope { get; init; }

    public required string Cache { get; init; }

    public string Prefetch { get; init; } = "none";

    public int Tokens { get; init; }

    /// <summary>Demand expert requests (router choices replayed).</summary>
    public long Requests { get; init; }

    public long Hits { get; init; }

    public long Misses { get; init; }

    /// <summary>Demand hits on an expert a prefetch brought in and nothing used yet.</summary>
    public long PrefetchHits { get; init; }

    /// <summary>Reads served by the profile's storage cache below the device; null when the profile has none.</summary>
    public long? StorageCacheHits { get; init; }

    /// <summary>Per MoE layer, over the counted (post-warm-up) tokens: <see cref="Hits"/> (prefetch hits included), <see cref="Misses"/>, <see cref="PrefetchHits"/>.</summary>
    public long[] LayerHits { get; init; } = [];

    public long[] LayerMisses { get; init; } = [];

    public long[] LayerPrefetchHits { get; init; } = [];

    public long PrefetchReads { get; init; }

    /// <summary>Prefetched experts evicted before any demand used them.</summary>
    public long PrefetchWasted { get; init; }

    /// <summary>Distinct predictions made (a key predicted again before it was demanded counts once).</summary>
    public long Predictions { get; init; }

    /// <summary>Demands that had been predicted since the key's previous demand.</summary>
    public long PredictedDemands { get; init; }

    /// <summary>Demands after the prefetcher's first prediction (the ones it had a chance to predict).</summary>
    public long PredictableDemands { get; init; }

    /// <summary>Bytes read from the SSD (demand misses + prefetches, + dense misses in page-cache mode); null without a model shape in bytes.</summary>
    public long? BytesRead { get; init; }

    public long? DemandBytes { get; init; }

    public long? PrefetchBytes { get; init; }

    public double HitRatio => Requests == 0 ? 0 : Hits / (double)Requests;

    public double MissRatio => Requests == 0 ? 0 : Misses / (double)Requests;

    public double? BytesPerToken => BytesRead is { } b && Tokens > 0 ? b / (double)Tokens : null;

    /// <summary>Of the distinct predictions, the fraction the router then used (null without a prefetcher).</summary>
    public double? PrefetchPrecision => Prefetch == "none" ? null : Predictions == 0 ? 0 : PredictedDemands / (double)Predictions;

    /// <summary>Of the demands after the first prediction, the fraction predicted beforehand (null without a prefetcher).</summary>
    public double? PrefetchRecall => Prefetch == "none" ? null : PredictableDemands == 0 ? 0 : PredictedDemands / (double)PredictableDemands;

    /// <summary>Predicted times (null without a device profile).</summary>
    public double? ComputeSeconds { get; init; }

    public double? IoSeconds { get; init; }

    public double? StallSeconds { get; init; }

    public double? WallSeconds => ComputeSeconds + StallSeconds;

    public double? TokensPerSecond => WallSeconds is { } w && w > 0 ? Tokens / w : null;

    public string? Profile { get; init; }

    /// <summary>Per-token rows, when requested.</summary>
    public TokenRecord[]? PerToken { get; init; }

    /// <summary>Seconds the replay itself took (simulator speed, not a prediction).</summary>
    public double ReplaySeconds { get; init; }
}
