using MoeLab.Engine.Gguf;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Model;

/// <summary>
/// The exact per-layer shape of a real MoE model: what <c>moelab model synth</c> reproduces (with random weights and
/// optionally fewer layers) and what the simulator predicts for at full size. Figures are the models' published
/// configs (Hugging Face config.json of each release).
/// </summary>
public sealed record ModelPreset
{
    public required string Name { get; init; }

    /// <summary>GGUF architecture name: qwen3moe, qwen35moe, llama (Mixtral), llama4.</summary>
    public required string Architecture { get; init; }

    public required int Layers { get; init; }

    public required int Hidden { get; init; }

    public required int Heads { get; init; }

    public required int KvHeads { get; init; }

    public required int HeadDim { get; init; }

    public required int Experts { get; init; }

    public required int ExpertsUsed { get; init; }

    /// <summary>Feed-forward width of one routed expert.</summary>
    public required int ExpertFeedForward { get; init; }

    /// <summary>Feed-forward width of the always-on shared expert (0 = none).</summary>
    public int SharedFeedForward { get; init; }

    /// <summary>Every n-th layer is MoE (Llama 4 interleaves dense and MoE layers); 1 = all layers.</summary>
    public int MoeEvery { get; init; } = 1;

    /// <summary>Width of the dense FFN in non-MoE layers (when MoeEvery &gt; 1).</summary>
    public int DenseFeedForward { get; init; }

    public required int Vocab { get; init; }

    public int ContextLength { get; init; } = 4096;

    public double RopeBase { get; init; } = 1_000_000;

    public double NormEpsilon { get; init; } = 1e-6;

    /// <summary>Hybrid models (Qwen3.5): every n-th layer is full attention, the others Gated DeltaNet; 0 = all full.</summary>
    public int FullAttentionInterval { get; init; }

    /// <summary>Fraction of the head dimension that is rotated (Qwen3.5 full attention: 0.25).</summary>
    public double PartialRotary { get; init; } = 1.0;

    /// <summary>Gated DeltaNet: key heads, value heads, key/value head dims and the causal conv kernel width.</summary>
    public int LinearKeyHeads { get; init; }

    public int LinearValueHeads { get; init; }

    public int LinearKeyHeadDim { get; init; }

    public int LinearValueHeadDim { get; init; }

    public int ConvKernel { get; init; }

    /// <summary>Sliding-window attention width (0 = none).</summary>
    public int SlidingWindow { get; init; }

    public int MoeLayerCount => (Layers + MoeEvery - 1) / MoeEvery;

    /// <summary>Rotated dimensions per head (<c>rope.dimension_count</c>): head_dim × partial_rotary_factor.</summary>
    public int RopeDimensions => (int)Math.Round(HeadDim * PartialRotary);

    /// <summary>Bytes of one routed expert (gate, up: FF rows of Hidden; down: Hidden rows of FF) stored as <paramref name="type"/>.</summary>
    public long ExpertBytes(GgmlType type) =>
        (2 * GgmlTypeInfo.RowBytes(type, Hidden) * ExpertFeedForward) + (GgmlTypeInfo.RowBytes(type, ExpertFeedForward) * Hidden);

    public long TotalExpertBytes(GgmlType type) => ExpertBytes(type) * Experts * MoeLayerCount;

    /// <summary>The shape a policy or the simulator sees, optionally for a slice of <paramref name="layers"/> layers.</summary>
    public ModelShape Shape(GgmlType expertType, int? layers = null) =>
        new(layers is { } l ? (l + MoeEvery - 1) / MoeEvery : MoeLayerCount, Experts, ExpertsUsed, ExpertBytes(expertType), Hidden);

    public static IReadOnlyList<ModelPreset> All { get; } =
    [
        // Qwen/Qwen3-30B-A3B config.json
        new() { Name = "qwen3-30b-a3b", Architecture = "qwen3moe", Layers = 48, Hidden = 2048, Heads = 32, KvHeads = 4, HeadDim = 128, Experts = 128, ExpertsUsed = 8, ExpertFeedForward = 768, Vocab = 151936, ContextLength = 40960 },

        // Qwen/Qwen3-235B-A22B config.json
        new() { Name = "qwen3-235b-a22b", Architecture = "qwen3moe", Layers = 94, Hidden = 4096, Heads = 64, KvHeads = 4, HeadDim = 128, Experts = 128, ExpertsUsed = 8, ExpertFeedForward = 1536, Vocab = 151936, ContextLength = 40960 },

        // Qwen/Qwen3.5-397B-A17B config.json (text_config): 60 layers = 15 × (3 Gated DeltaNet + 1 gated full attention),
        // hidden 4096, 32 Q / 2 KV heads of 256, partial_rotary_factor 0.25, 512 experts (10 routed + 1 shared) of 1024,
        // linear attention 16 QK / 64 V heads of 128, conv kernel 4, vocab 248320, rope_theta 1e7.
        new()
        {
            Name = "qwen3.5-397b-a17b", Architecture = "qwen35moe", Layers = 60, Hidden = 4096, Heads = 32, KvHeads = 2, HeadDim = 256,
            Experts = 512, ExpertsUsed = 10, ExpertFeedForward = 1024, SharedFeedForward = 1024, Vocab = 248320, ContextLength = 262144,
            RopeBase = 10_000_000, FullAttentionInterval = 4, PartialRotary = 0.25,
            LinearKeyHeads = 16, LinearValueHeads = 64, LinearKeyHeadDim = 128, LinearValueHeadDim = 128, ConvKernel = 4,
        },

        // Qwen/Qwen3.5-35B-A3B config.json (text_config): 40 layers, hidden 2048, 16 Q / 2 KV heads of 256, 256 experts
        // (8 routed + 1 shared) of 512, linear attention 16 QK / 32 V heads of 128.
        new()
        {
            Name = "qwen3.5-35b-a3b", Architecture = "qwen35moe", Layers = 40, Hidden = 2048, Heads = 16, KvHeads = 2, HeadDim = 256,
            Experts = 256, ExpertsUsed = 8, ExpertFeedForward = 512, SharedFeedForward = 512, Vocab = 248320, ContextLength = 262144,
            RopeBase = 10_000_000, FullAttentionInterval = 4, PartialRotary = 0.25,
            LinearKeyHeads = 16, LinearValueHeads = 32, LinearKeyHeadDim = 128, LinearValueHeadDim = 128, ConvKernel = 4,
        },

        // mistralai/Mixtral-8x7B-v0.1 config.json: 32 layers, hidden 4096, 32 Q / 8 KV heads, intermediate 14336, 8 experts,
        // top-2, vocab 32000, max_position_embeddings 32768, rope_theta 1e6, rms_norm_eps 1e-5, sliding_window null.
        new() { Name = "mixtral-8x7b", Architecture = "llama", Layers = 32, Hidden = 4096, Heads = 32, KvHeads = 8, HeadDim = 128, Experts = 8, ExpertsUsed = 2, ExpertFeedForward = 14336, Vocab = 32000, ContextLength = 32768, NormEpsilon = 1e-5 },

        // meta-llama/Llama-4-Maverick-17B-128E config.json: MoE every second layer, one shared expert. Simulator only.
        new()
        {
            Name = "llama-4-maverick", Architecture = "llama4", Layers = 48, Hidden = 5120, Heads = 40, KvHeads = 8, HeadDim = 128, Experts = 128, ExpertsUsed = 1,
            ExpertFeedForward = 8192, SharedFeedForward = 8192, MoeEvery = 2, DenseFeedForward = 16384, Vocab = 202048, ContextLength = 1048576, RopeBase = 500_000, NormEpsilon = 1e-5,
        },

        // Tiny models for tests: the same structure at toy width, so a forward pass takes milliseconds.
        new() { Name = "tiny-qwen3moe", Architecture = "qwen3moe", Layers = 2, Hidden = 64, Heads = 4, KvHeads = 2, HeadDim = 16, Experts = 8, ExpertsUsed = 2, ExpertFeedForward = 32, Vocab = 320, ContextLength = 512 },
        new()
        {
            Name = "tiny-qwen35moe", Architecture = "qwen35moe", Layers = 8, Hidden = 64, Heads = 4, KvHeads = 2, HeadDim = 16,
            Experts = 8, ExpertsUsed = 2, ExpertFeedForward = 32, SharedFeedForward = 32, Vocab = 320, ContextLength = 512,
            RopeBase = 10_000_000, FullAttentionInterval = 4, PartialRotary = 0.25,
            LinearKeyHeads = 2, LinearValueHeads = 4, LinearKeyHeadDim = 16, LinearValueHeadDim = 16, ConvKernel = 4,
        },
        new() { Name = "tiny-mixtral", Architecture = "llama", Layers = 2, Hidden = 64, Heads = 4, KvHeads = 2, HeadDim = 16, Experts = 8, ExpertsUsed = 2, ExpertFeedForward = 32, Vocab = 400, ContextLength = 512, NormEpsilon = 1e-5 },
        // Small models with rows of 256, so llama-quantize's K-quant presets apply without block-32 fallbacks (parity checks).
        new() { Name = "small-mixtral", Architecture = "llama", Layers = 4, Hidden = 256, Heads = 8, KvHeads = 2, HeadDim = 32, Experts = 8, ExpertsUsed = 2, ExpertFeedForward = 512, Vocab = 512, ContextLength = 1024, NormEpsilon = 1e-5 },
        new()
        {
            Name = "small-qwen35moe", Architecture = "qwen35moe", Layers = 4, Hidden = 256, Heads = 4, KvHeads = 2, HeadDim = 64,
            Experts = 16, ExpertsUsed = 4, ExpertFeedForward = 256, SharedFeedForward = 256, Vocab = 512, ContextLength = 1024,
            RopeBase = 10_000_000, FullAttentionInterval = 4, PartialRotary = 0.25,
            LinearKeyHeads = 2, LinearValueHeads = 4, LinearKeyHeadDim = 64, LinearValueHeadDim = 64, ConvKernel = 4,
        },
        new() { Name = "small-qwen3moe", Architecture = "qwen3moe", Layers = 4, Hidden = 256, Heads = 8, KvHeads = 2, HeadDim = 32, Experts = 32, ExpertsUsed = 4, ExpertFeedForward = 256, Vocab = 512, ContextLength = 1024 },
    ];

    public static ModelPreset? Find(string name) => All.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
}
