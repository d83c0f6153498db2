using System.Text.Json.Serialization;

namespace MoeLab.DeviceAgent.Api;

/// <summary>
/// One fully resolved cell of an experiment matrix: everything needed to run it on any target (local engine, a
/// device agent, or the trace simulator) and nothing that depends on where the harness runs. The harness expands
/// YAML into cells; targets execute them and answer with a <see cref="CellResult"/>.
/// Strategy fields hold registry specs (<c>name</c> or <c>name:param=value,...</c>, see StrategySpec).
/// </summary>
public sealed record RunCell
{
    /// <summary>Stable id derived from the cell's parameters: a resumed run recognises finished cells by it.</summary>
    public required string CellId { get; init; }

    public required string Experiment { get; init; }

    /// <summary>The model: a file name inside the agent's model directory, or a path for the local target.</summary>
    public required string Model { get; init; }

    public required string[] Prompts { get; init; }

    public int GenerateTokens { get; init; } = 32;

    /// <summary>Tokens generated and discarded before measuring each repetition (caches warm, threads spun up).</summary>
    public int WarmupTokens { get; init; }

    public int Repetitions { get; init; } = 1;

    public long Seed { get; init; } = 42;

    /// <summary>0 = greedy.</summary>
    public double Temperature { get; init; }

    public int TopK { get; init; }

    public double TopP { get; init; } = 1.0;

    public int Threads { get; init; }

    /// <summary>RAM for cached routed experts, bytes; null = every expert resident (the in-RAM baseline).</summary>
    public long? BudgetBytes { get; init; }

    public string Cache { get; init; } = "lru";

    public string Prefetch { get; init; } = "none";

    public string Precision { get; init; } = "native";

    public string Routing { get; init; } = "unchanged";

    /// <summary>I/O scheduler spec (ordering, queue depth, cancellation), e.g. <c>fifo:queue_depth=8</c>.</summary>
    public string Io { get; init; } = "fifo";

    /// <summary><c>direct</c> (O_DIRECT) or <c>buffered</c> (page cache).</summary>
    public string IoMode { get; init; } = "direct";

    /// <summary>Record every token's routing into the result (for traces and simulator calibration).</summary>
    public bool RecordTrace { get; init; }

    /// <summary>
    /// A routing trace of the model (path) and its format (moelab, jsonl, lines): what a <c>sim:</c> target replays, and on
    /// the local target the profile that static-hot, layered-lru, per-expert-bits and transition:source=profile learn from.
    /// </summary>
    public string? Trace { get; init; }

    public string? TraceFormat { get; init; }

    /// <summary>For <c>sim:</c> targets: the full-size model shape to predict for (a ModelPreset name), when not the file's own.</summary>
    public string? ModelPreset { get; init; }

    /// <summary>Compute next-token KL / top-1 agreement against the exact model (lossy strategies).</summary>
    public bool MeasureQuality { get; init; }

    /// <summary>The reference text quality is teacher-forced on (null: <c>QualityText.Default</c>); carried inline so a device needs no file.</summary>
    public string? QualityText { get; init; }

    /// <summary>At most this many tokens of the reference text are evaluated (bounded by the context).</summary>
    public int QualityTokens { get; init; } = 256;
}

/// <summary>What a target reports for a cell: totals plus the per-token rows (also streamed as <see cref="TokenEvent"/>s).</summary>
public sealed record CellResult
{
    public required string CellId { get; init; }

    public required string IoMode { get; init; }

    public long? BudgetBytes { get; init; }

    public int Tokens { get; init; }

    public double Seconds { get; init; }

    public double TokensPerSecond { get; init; }

    public long BytesRead { get; init; }

    public long ExpertHits { get; init; }

    public long ExpertMisses { get; init; }

    public long PrefetchHits { get; init; }

    public double IoSeconds { get; init; }

    public double ComputeSeconds { get; init; }

    public double StallSeconds { get; init; }

    public long PeakRssBytes { get; init; }

    /// <summary>Of the experts the prefetcher read ahead, the fraction the router then used (null without prefetch).</summary>
    public double? PrefetchPrecision { get; init; }

    /// <summary>Of the experts the router used, the fraction the prefetcher had predicted (null without prefetch).</summary>
    public double? PrefetchRecall { get; init; }

    /// <summary>Mean KL(exact ‖ this) of the next-token distribution, when measured.</summary>
    public double? MeanKlDivergence { get; init; }

    public double? Top1Agreement { get; init; }

    /// <summary>Perplexity of the quality reference text under this cell's strategies, when measured.</summary>
    public double? Perplexity { get; init; }

    /// <summary>Perplexity of the same text under the exact model (native precision, unchanged routing).</summary>
    public double? ExactPerplexity { get; init; }

    /// <summary>Largest per-position KL(exact ‖ this), when measured.</summary>
    public double? MaxKlDivergence { get; init; }

    /// <summary>Next-token predictions the quality figures average over.</summary>
    public int? QualityPositions { get; init; }

    /// <summary>Of those, positions whose logits were bit-identical to the exact model's (all of them for an exact strategy).</summary>
    public int? IdenticalLogitPositions { get; init; }

    /// <summary>
    /// The measured tokens' expert demands split by MoE layer (hits, misses and prefetch hits are disjoint, as in
    /// <see cref="TokenEvent"/>; summed over layers they equal the token rows' totals). Empty when the target did
    /// not count per layer (results written before this field existed).
    /// </summary>
    public LayerExpertCounts[] ExpertsByLayer { get; init; } = [];

    /// <summary>Generated text per repetition.</summary>
    public string[] Texts { get; init; } = [];

    public TokenEvent[] TokenEvents { get; init; } = [];

    /// <summary>Routing trace (token-major, layer, k experts) in the moelab binary trace format, base64; when recorded.</summary>
    public string? TraceBase64 { get; init; }

    /// <summary>How the result was produced: "engine" or "simulator:&lt;profile&gt;".</summary>
    public string Source { get; init; } = "engine";
}

/// <summary>One MoE layer's expert demands over a cell's measured tokens.</summary>
public sealed record LayerExpertCounts(int Layer, long Hits, long Misses, long PrefetchHits)
{
    [JsonIgnore]
    public long Requests => Hits + Misses + PrefetchHits;

    /// <summary>Demands served from RAM (cached or prefetched) over all demands; NaN without demands.</summary>
    [JsonIgnore]
    public double HitRate => Requests == 0 ? double.NaN : (Hits + PrefetchHits) / (double)Requests;

    /// <summary>Per-layer spans (hits, misses, prefetch hits of equal length) as rows, one per layer.</summary>
    public static LayerExpertCounts[] Of(ReadOnlySpan<long> hits, ReadOnlySpan<long> misses, ReadOnlySpan<long> prefetchHits)
    {
        var rows = new LayerExpertCounts[hits.Length];
        for (int l = 0; l < rows.Length; l++) rows[l] = new LayerExpertCounts(l, hits[l], misses[l], prefetchHits[l]);
        return rows;
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = false)]
[JsonSerializable(typeof(RunCell))]
[JsonSerializable(typeof(CellResult))]
public sealed partial class RunCellJson : JsonSerializerContext;
