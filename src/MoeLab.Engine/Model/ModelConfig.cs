using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Model;

/// <summary>
/// Hyper-parameters of an MoE model as llama.cpp reads them from GGUF metadata (<c>{arch}.*</c> keys). Architectures
/// share the MoE block; they differ in attention (see <see cref="Architecture"/>).
/// </summary>
public sealed record ModelConfig
{
    public required string Architecture { get; init; }

    public required int ContextLength { get; init; }

    public required int Hidden { get; init; }

    public required int Layers { get; init; }

    public required int Heads { get; init; }

    public required int KvHeads { get; init; }

    public required int KeyLength { get; init; }

    public required int ValueLength { get; init; }

    public required float NormEpsilon { get; init; }

    public required float RopeBase { get; init; }

    /// <summary>Rotated dimensions per head (<c>rope.dimension_count</c>; the whole head by default).</summary>
    public required int RopeDimensions { get; init; }

    public required int Experts { get; init; }

    public required int ExpertsUsed { get; init; }

    public required int ExpertFeedForward { get; init; }

    /// <summary>Shared-expert width (Qwen3.5); 0 = none.</summary>
    public int SharedFeedForward { get; init; }

    /// <summary>Renormalize the top-k router weights to sum 1 (qwen3moe and Mixtral do).</summary>
    public bool NormalizeTopK { get; init; } = true;

    /// <summary>Sliding-window attention width (0 = full context).</summary>
    public int SlidingWindow { get; init; }

    /// <summary>Every n-th layer uses full attention, the rest linear attention (Qwen3.5); 0 = every layer full.</summary>
    public int FullAttentionInterval { get; init; }

    public required int Vocab { get; init; }

    public static ModelConfig FromGguf(GgufFile f)
    {
        string arch = f.Architecture;
        string p = arch + ".";
        int Int(string key) => checked((int)f.GetInt(p + key));
        int IntOr(string key, int fallback) => checked((int)f.GetInt(p + key, fallback));

        int hidden = Int("embedding_length");
        int heads = Int("attention.head_count");
        int keyLength = IntOr("attention.key_length", hidden / heads);
        int vocab = f.GetArray<string>("tokenizer.ggml.tokens")?.Length
                    ?? checked((int)f.Tensor("token_embd.weight").Dim(1));
        var config = new ModelConfig
        {
            Architecture = arch,
            ContextLength = IntOr("context_length", 4096),
            Hidden = hidden,
            Layers = Int("block_count"),
            Heads = heads,
            KvHeads = IntOr("attention.head_count_kv", heads),
            KeyLength = keyLength,
            ValueLength = IntOr("attention.value_length", keyLength),
            NormEpsilon = (float)f.GetDouble(p + "attention.layer_norm_rms_epsilon", 1e-6),
            RopeBase = (float)f.GetDouble(p + "rope.freq_base", 10000),
            RopeDimensions = IntOr("rope.dimension_count", keyLength),
            Experts = Int("expert_count"),
            ExpertsUsed = Int("expert_used_count"),
            ExpertFeedForward = IntOr("expert_feed_forward_length", 0) is > 0 and var ff ? ff : IntOr("feed_forward_length", 0),
            SharedFeedForward = IntOr("expert_shared_feed_forward_length", 0),
            NormalizeTopK = f.GetBool(p + "expert_weights_norm", arch is "qwen3moe" or "llama" or "qwen35moe"),
            SlidingWindow = IntOr("attention.sliding_window", 0),
            FullAttentionInterval = IntOr("full_attention_interval", 0),
            Vocab = vocab,
        };
        config.Validate(f.Path);
        return config;
    }

    private void Validate(string path)
    {
        void Require(bool ok, string what)
        {
            if (!ok)
            {
                throw new GgufFormatException($"{path}: {Architecture} hyper-parameters are inconsistent: {what}");
            }
        }

        Require(Hidden > 0 && Layers > 0 && Heads > 0, "embedding_length, block_count and attention.head_count must be positive");
        Require(KvHeads > 0 && Heads % KvHeads == 0, $"attention.head_count {Heads} is not a multiple of head_count_kv {KvHeads}");
        Require(Experts > 0 && ExpertsUsed > 0 && ExpertsUsed <= Experts, $"expert_used_count {ExpertsUsed} must be between 1 and expert_count {Experts}");
        Require(ExpertFeedForward > 0, "expert_feed_forward_length is missing");
        Require(RopeDimensions > 0 && RopeDimensions <= KeyLength && RopeDimensions % 2 == 0, $"rope.dimension_count {RopeDimensions} must be even and at most key_length {KeyLength}");
    }
}
