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

    /// <summary>Context-length scaling of the rotary embedding (<c>rope.scaling.*</c>); none by default.</summary>
    public RopeScaling RopeScaling { get; init; } = RopeScaling.None;

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

    /// <summary>Multi-token-prediction blocks appended after the main stack (<c>nextn_predict_layers</c>); not run.</summary>
    public int NextNLayers { get; init; }

    /// <summary>Gated DeltaNet causal convolution width (<c>ssm.conv_kernel</c>).</summary>
    public int SsmConvKernel { get; init; }

    /// <summary>Gated DeltaNet value width, value heads × value head dim (<c>ssm.inner_size</c>).</summary>
    public int SsmInnerSize { get; init; }

    /// <summary>Gated DeltaNet key (= value) head dimension (<c>ssm.state_size</c>).</summary>
    public int SsmStateSize { get; init; }

    /// <summary>Gated DeltaNet value heads (<c>ssm.time_step_rank</c>).</summary>
    public int SsmValueHeads { get; init; }

    /// <summary>Gated DeltaNet key heads (<c>ssm.group_count</c>).</summary>
    public int SsmKeyHeads { get; init; }

    /// <summary>Full-attention layers gate their output with sigmoid(gate), the gate coming from a joint Q+gate projection (Qwen3.5).</summary>
    public bool GatedAttention => Architecture is "qwen35moe";

    /// <summary>
    /// Whether layer <paramref name="layer"/> is a Gated DeltaNet (recurrent) layer: llama.cpp's rule
    /// (i + 1) % full_attention_interval != 0, so the last layer of every group of n is full attention.
    /// </summary>
    public bool IsRecurrent(int layer) =>
        RecurrentLayers is { } explicitly ? explicitly[layer] : FullAttentionInterval > 0 && (layer + 1) % FullAttentionInterval != 0;

    /// <summary>An explicit per-layer schedule (<c>attention.recurrent_layers</c>), which llama.cpp prefers over the interval when present.</summary>
    public bool[]? RecurrentLayers { get; init; }

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
        bool hybrid = arch is "qwen35moe";
        int vocab = f.GetArray<string>("tokenizer.ggml.tokens")?.Length
                    ?? checked((int)f.Tensor("token_embd.weight").Dim(1));
        var config = new ModelConfig
        {
            Architecture = arch,
            ContextLength = IntOr("context_length", 4096),
            Hidden = hidden,
            // block_count includes the MTP blocks llama.cpp loads but does not run in the main pass.
            Layers = Int("block_count") - IntOr("nextn_predict_layers", 0),
            NextNLayers = IntOr("nextn_predict_layers", 0),
            Heads = heads,
            KvHeads = IntOr("attention.head_count_kv", heads),
            KeyLength = keyLength,
            ValueLength = IntOr("attention.value_length", keyLength),
            NormEpsilon = (float)f.GetDouble(p + "attention.layer_norm_rms_epsilon", 1e-6),
            RopeBase = (float)f.GetDouble(p + "rope.freq_base", 10000),
            RopeDimensions = IntOr("rope.dimension_count", keyLength),
            RopeScaling = RopeScaling.FromGguf(f, p, IntOr("context_length", 4096)),
            Experts = Int("expert_count"),
            ExpertsUsed = Int("expert_used_count"),
            ExpertFeedForward = IntOr("expert_feed_forward_length", 0) is > 0 and var ff ? ff : IntOr("feed_forward_length", 0),
            SharedFeedForward = IntOr("expert_shared_feed_forward_length", 0),
            NormalizeTopK = f.GetBool(p + "expert_weights_norm", arch is "qwen3moe" or "llama" or "qwen35moe"),
            SlidingWindow = IntOr("attention.sliding_window", 0),
            FullAttentionInterval = IntOr("full_attention_interval", hybrid ? 4 : 0),
            RecurrentLayers = hybrid && f.Has(p + "attention.recurrent_layers") ? f.GetArray<bool>(p + "attention.recurrent_layers") : null,
            SsmConvKernel = hybrid ? Int("ssm.conv_kernel") : 0,
            SsmInnerSize = hybrid ? Int("ssm.inner_size") : 0,
            SsmStateSize = hybrid ? Int("ssm.state_size") : 0,
            SsmValueHeads = hybrid ? Int("ssm.time_step_rank") : 0,
            SsmKeyHeads = hybrid ? Int("ssm.group_count") : 0,
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
        if (Architecture is "qwen35moe")
        {
            Require(SsmConvKernel >= 1 && SsmStateSize > 0 && SsmKeyHeads > 0 && SsmValueHeads > 0, "ssm.conv_kernel, ssm.state_size, ssm.group_count and ssm.time_step_rank must be positive");
            Require(SsmValueHeads % SsmKeyHeads == 0, $"ssm.time_step_rank {SsmValueHeads} (value heads) is not a multiple of ssm.group_count {SsmKeyHeads} (key heads)");
            Require(SsmInnerSize == SsmValueHeads * SsmStateSize, $"ssm.inner_size {SsmInnerSize} must equal value heads {SsmValueHeads} × state size {SsmStateSize} (key and value heads have the same dimension)");
            Require(KeyLength == ValueLength, $"attention.key_length {KeyLength} must equal value_length {ValueLength}");
        }

        Require(Layers > 0, "block_count minus nextn_predict_layers must be positive");
        Require(RecurrentLayers is null || RecurrentLayers.Length >= Layers, $"attention.recurrent_layers has {RecurrentLayers?.Length} entries for {Layers} layers");
        Require(RopeDimensions > 0 && RopeDimensions <= KeyLength && RopeDimensions % 2 == 0, $"rope.dimension_count {RopeDimensions} must be even and at most key_length {KeyLength}");
    }
}

/// <summary>
/// Rotary-embedding scaling for contexts beyond training, as llama.cpp reads it (<c>rope.scaling.type</c> linear
/// (default) / yarn / none, <c>rope.scaling.factor</c> or the old <c>rope.scale_linear</c>,
/// <c>rope.scaling.original_context_length</c>, <c>rope.scaling.attn_factor</c>) and ggml applies it: angles times
/// <see cref="FreqScale"/> = 1/factor; YaRN blends interpolated and original angles per dimension pair between the
/// correction dims (β_fast 32, β_slow 1) and scales cos/sin by <see cref="MScale"/>.
/// </summary>
public sealed record RopeScaling(float FreqScale, bool Yarn, int OriginalContext, float AttnFactor)
{
    public static readonly RopeScaling None = new(1f, false, 0, 1f);

    /// <summary>cos/sin multiplier: YaRN's 1 + 0.1·ln(factor) (llama.cpp divides its own attn factor by the same, then ggml multiplies it back), times attn_factor.</summary>
    public float MScale => Yarn && FreqScale < 1f ? (1f + (0.1f * MathF.Log(1f / FreqScale))) * AttnFactor : AttnFactor;

    public static RopeScaling FromGguf(GgufFile f, string prefix, int contextLength)
    {
        string type = f.GetStringOrNull(prefix + "rope.scaling.type") ?? "linear";
        float factor = (float)f.GetDouble(prefix + "rope.scaling.factor", f.GetDouble(prefix + "rope.scale_linear", 0));
        if (type is not ("none" or "linear" or "yarn"))
        {
            throw new GgufFormatException($"{f.Path}: {prefix}rope.scaling.type '{type}' is not supported (none, linear and yarn are)");
        }

        if (f.FindTensor("rope_freqs.weight") is not null || f.FindTensor("blk.0.rope_freqs.weight") is not null)
        {
            throw new GgufFormatException($"{f.Path}: tensor 'rope_freqs.weight' (per-dimension rope frequency factors, Llama-3 style) is not supported");
        }

        float scale = type == "none" || factor == 0 ? 1f : 1f / factor;
        return new RopeScaling(
            scale,
            type == "yarn",
            checked((int)f.GetInt(prefix + "rope.scaling.original_context_length", contextLength)),
            (float)f.GetDouble(prefix + "rope.scaling.attn_factor", 1.0));
    }
}
