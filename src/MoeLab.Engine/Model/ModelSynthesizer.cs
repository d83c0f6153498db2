using System.Runtime.InteropServices;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Tokenizer;

namespace MoeLab.Engine.Model;

/// <summary>What to synthesize: a preset's exact layer shape, optionally fewer layers, weights stored as <see cref="Quant"/>.</summary>
public sealed record SynthOptions(ModelPreset Preset, int? Layers = null, GgmlType Quant = GgmlType.F32, ulong Seed = 1)
{
    /// <summary>
    /// One <c>blk.N.attn_qkv.weight</c> (Q rows, then K, then V) in full-attention layers instead of attn_q/k/v, as
    /// some converters write it (llama.cpp's create_tensor_qkv). Same weights as the separate file with the same seed.
    /// </summary>
    public bool FusedQkv { get; init; }

    /// <summary>
    /// One <c>blk.N.ffn_gate_up_exps.weight</c> {E, 2·FF, n}: per expert its FF gate rows, then its FF up rows
    /// (llama.cpp's create_tensor_gate_up_exps). Same weights as the separate file with the same seed.
    /// </summary>
    public bool FusedGateUp { get; init; }

    /// <summary>Context scaling keys as converters write them for long-context checkpoints: "yarn" or "linear" with <see cref="RopeScalingFactor"/>; null = none written.</summary>
    public string? RopeScalingType { get; init; }

    public float RopeScalingFactor { get; init; } = 1f;

    /// <summary>Q, K and V biases (<c>attn_{q,k,v}.bias</c>, or <c>attn_qkv.bias</c> with <see cref="FusedQkv"/>), as Qwen2-style checkpoints carry.</summary>
    public bool AttentionBias { get; init; }

    /// <summary>
    /// Multiplies the initial range of every block's output projection (attn_output, ssm_out, ffn_down_exps,
    /// ffn_down_shexp) by this factor. At 1 (the default) each block rewrites a large part of the residual stream and
    /// routing decorrelates across layers; trained models add small updates to a large stream, so consecutive layers'
    /// hidden states stay similar (what next-gate prefetching relies on). Written as <see cref="LayerUpdateScaleKey"/>
    /// when not 1, so the default file is unchanged.
    /// </summary>
    public float LayerUpdateScale { get; init; } = 1f;

    /// <summary>The GGUF metadata key recording <see cref="LayerUpdateScale"/> (absent: 1).</summary>
    public const string LayerUpdateScaleKey = "moelab.synth.layer_update_scale";

    /// <summary>The layer update scale <paramref name="file"/> was synthesized with; null when it records none (scale 1, or not synthesized).</summary>
    public static double? LayerUpdateScaleOf(GgufFile file) => file.Has(LayerUpdateScaleKey) ? file.GetDouble(LayerUpdateScaleKey) : null;
}

/// <summary>
/// Writes a random-weight model in real GGUF with the exact per-layer shape of a real model, a byte-level BPE
/// vocabulary and the standard metadata, so MoeLab and llama.cpp both load it. Weights are uniform with the
/// variance of a 1/√fan-in initialisation (so activations stay O(1) through the depth); norms are near 1; routers
/// are random so routing varies from token to token. Deterministic in the seed.
/// </summary>
public static class ModelSynthesizer
{
    public static void Write(SynthOptions o, string path, IProgress<double>? progress = null)
    {
        var p = o.Preset;
        if (p.Architecture is not ("qwen3moe" or "qwen35moe" or "llama"))
        {
            throw new NotSupportedException($"synthesizing '{p.Architecture}' models ({p.Name}) is not supported (qwen3moe, qwen35moe and llama/Mixtral are)");
        }

        int layers = o.Layers ?? p.Layers;
        if (layers < 1 || layers > p.Layers)
        {
            throw new ArgumentException($"--layers must be between 1 and {p.Layers} for {p.Name}");
        }

        if (!(o.LayerUpdateScale > 0) || !float.IsFinite(o.LayerUpdateScale))
        {
            throw new ArgumentException($"the layer update scale must be a finite number > 0, not {o.LayerUpdateScale}");
        }

        var w = new GgufWriter();
        string a = p.Architecture + ".";
        bool hybrid = p.Architecture == "qwen35moe";
        int rot = p.RopeDimensions;
        w.Set("general.architecture", p.Architecture)
         .Set("general.name", $"moelab-synth {p.Name} ({layers} of {p.Layers} layers, {o.Quant}{UpdateScaleLabel(o.LayerUpdateScale)})")
         .Set("general.file_type", FileType(o.Quant))
         .Set("general.quantization_version", 2u)
         .Set(a + "context_length", (uint)p.ContextLength)
         .Set(a + "embedding_length", (uint)p.Hidden)
         .Set(a + "block_count", (uint)layers)
         .Set(a + "attention.head_count", (uint)p.Heads)
         .Set(a + "attention.head_count_kv", (uint)p.KvHeads)
         .Set(a + "attention.key_length", (uint)p.HeadDim)
         .Set(a + "attention.value_length", (uint)p.HeadDim)
         .Set(a + "attention.layer_norm_rms_epsilon", (float)p.NormEpsilon)
         .Set(a + "rope.freq_base", (float)p.RopeBase)
         .Set(a + "rope.dimension_count", (uint)rot)
         .Set(a + "expert_count", (uint)p.Experts)
         .Set(a + "expert_used_count", (uint)p.ExpertsUsed);
        if (p.Architecture == "llama")
        {
            // llama.cpp's llama graph sizes the expert tensors by feed_forward_length (Mixtral has no other FFN).
            w.Set(a + "feed_forward_length", (uint)p.ExpertFeedForward);
        }
        else
        {
            w.Set(a + "feed_forward_length", (uint)(p.ExpertFeedForward * p.ExpertsUsed))
             .Set(a + "expert_feed_forward_length", (uint)p.ExpertFeedForward);
        }

        if (o.RopeScalingType is { } scaling)
        {
            w.Set(a + "rope.scaling.type", scaling)
             .Set(a + "rope.scaling.factor", o.RopeScalingFactor)
             .Set(a + "rope.scaling.original_context_length", (uint)p.ContextLength);
        }

        if (p.SlidingWindow > 0)
        {
            w.Set(a + "attention.sliding_window", (uint)p.SlidingWindow);
        }

        if (hybrid)
        {
            // Qwen3_5MoeTextModel in convert_hf_to_gguf.py: ssm.* from the linear_* config entries, the interleaved
            // M-RoPE sections (text positions make them plain NEOX rotation), the layer schedule's interval.
            w.Set(a + "expert_shared_feed_forward_length", (uint)p.SharedFeedForward)
             .Set(a + "rope.dimension_sections", GgufValue.Of(MRopeSections(rot)))
             .Set(a + "ssm.conv_kernel", (uint)p.ConvKernel)
             .Set(a + "ssm.state_size", (uint)p.LinearKeyHeadDim)
             .Set(a + "ssm.group_count", (uint)p.LinearKeyHeads)
             .Set(a + "ssm.time_step_rank", (uint)p.LinearValueHeads)
             .Set(a + "ssm.inner_size", (uint)(p.LinearValueHeadDim * p.LinearValueHeads))
             .Set(a + "full_attention_interval", (uint)p.FullAttentionInterval);
        }

        if (o.LayerUpdateScale != 1f)
        {
            w.Set(SynthOptions.LayerUpdateScaleKey, o.LayerUpdateScale);
        }

        WriteTokenizer(w, p);

        ulong seed = o.Seed;
        long total = 0, done = 0;

        // A tensor is one or more random parts, each drawing its own seed in order; a fused tensor writes, per group
        // (all of it, or one expert), each part's rows in turn, so it holds exactly the separate tensors' values.
        void AddParts(string name, GgmlType type, long[] dims, int groups, params Part[] parts)
        {
            type = Fit(type, dims[0]);
            var rows = new RandomRows[parts.Length];
            for (int i = 0; i < parts.Length; i++)
            {
                rows[i] = new RandomRows(type, parts[i].Cols > 0 ? parts[i].Cols : (int)dims[0], parts[i].Rows * groups, parts[i].Scale, parts[i].Offset, seed++);
            }

            long bytes = GgufWriter.TensorBytes(type, dims);
            total += bytes;
            w.AddTensor(name, type, dims, stream =>
            {
                for (int g = 0; g < groups; g++)
                {
                    for (int i = 0; i < rows.Length; i++)
                    {
                        rows[i].Write(stream, parts[i].Rows);
                    }
                }

                done += bytes;
                progress?.Report(done / (double)total);
            });
        }

        void Add(string name, GgmlType type, long[] dims, float scale, float offset = 0)
        {
            long rows = 1;
            for (int i = 1; i < dims.Length; i++)
            {
                rows *= dims[i];
            }

            AddParts(name, type, dims, 1, new Part(rows, scale, offset));
        }

        int h = p.Hidden, hd = p.HeadDim, q = p.Heads * hd, kv = p.KvHeads * hd;
        var qt = o.Quant;
        // The initial range of a block's output projection: how much of the residual stream each block rewrites.
        float Out(int fanIn) => o.LayerUpdateScale * Scale(fanIn);
        var f32 = GgmlType.F32;
        Add("token_embd.weight", qt, [h, p.Vocab], 1f);
        Add("output_norm.weight", f32, [h], 0.1f, 1f);
        Add("output.weight", qt, [h, p.Vocab], Scale(h));
        for (int l = 0; l < layers; l++)
        {
            string b = $"blk.{l}.";
            Add(b + "attn_norm.weight", f32, [h], 0.1f, 1f);
            if (hybrid && (l + 1) % p.FullAttentionInterval != 0)
            {
                // Gated DeltaNet (llama.cpp's qwen35moe tensor shapes).
                int dk = p.LinearKeyHeadDim, keyDim = p.LinearKeyHeads * dk, valueDim = p.LinearValueHeads * p.LinearValueHeadDim;
                int channels = (2 * keyDim) + valueDim, vh = p.LinearValueHeads;
                Add(b + "attn_qkv.weight", qt, [h, channels], Scale(h));
                Add(b + "attn_gate.weight", qt, [h, valueDim], Scale(h));
                Add(b + "ssm_conv1d.weight", f32, [p.ConvKernel, channels], Scale(p.ConvKernel));
                Add(b + "ssm_dt.bias", f32, [vh], 0.5f);
                Add(b + "ssm_a", f32, [vh], 0.5f, -1f); // −exp(A_log): negative, so exp(g) is a decay in (0, 1)
                // β and α are per-head scalars that steer the recurrence; kept F32 like the routers.
                Add(b + "ssm_beta.weight", f32, [h, vh], Scale(h));
                Add(b + "ssm_alpha.weight", f32, [h, vh], Scale(h));
                Add(b + "ssm_norm.weight", f32, [p.LinearValueHeadDim], 0.1f, 1f);
                Add(b + "ssm_out.weight", qt, [valueDim, h], Out(valueDim));
            }
            else
            {
                int qRows = hybrid ? 2 * q : q;
                if (o.FusedQkv)
                {
                    AddParts(b + "attn_qkv.weight", qt, [h, qRows + (2 * kv)], 1, new(qRows, Scale(h)), new(kv, Scale(h)), new(kv, Scale(h)));
                    if (o.AttentionBias)
                    {
                        AddParts(b + "attn_qkv.bias", f32, [qRows + (2 * kv)], 1, new(1, 0.5f, Cols: qRows), new(1, 0.5f, Cols: kv), new(1, 0.5f, Cols: kv));
                    }
                }
                else
                {
                    Add(b + "attn_q.weight", qt, [h, qRows], Scale(h));
                    Add(b + "attn_k.weight", qt, [h, kv], Scale(h));
                    Add(b + "attn_v.weight", qt, [h, kv], Scale(h));
                    if (o.AttentionBias)
                    {
                        Add(b + "attn_q.bias", f32, [qRows], 0.5f);
                        Add(b + "attn_k.bias", f32, [kv], 0.5f);
                        Add(b + "attn_v.bias", f32, [kv], 0.5f);
                    }
                }

                Add(b + "attn_output.weight", qt, [q, h], Out(q));
                if (p.Architecture != "llama")
                {
                    Add(b + "attn_q_norm.weight", f32, [hd], 0.1f, 1f);
                    Add(b + "attn_k_norm.weight", f32, [hd], 0.1f, 1f);
                }
            }

            Add(b + (hybrid ? "post_attention_norm.weight" : "ffn_norm.weight"), f32, [h], 0.1f, 1f);
            // llama.cpp's quantizer keeps routers in F32 too: they are tiny and routing is sensitive to them.
            Add(b + "ffn_gate_inp.weight", f32, [h, p.Experts], 4 * Scale(h));
            if (o.FusedGateUp)
            {
                AddParts(b + "ffn_gate_up_exps.weight", qt, [h, 2 * p.ExpertFeedForward, p.Experts], p.Experts, new(p.ExpertFeedForward, Scale(h)), new(p.ExpertFeedForward, Scale(h)));
            }
            else
            {
                Add(b + "ffn_gate_exps.weight", qt, [h, p.ExpertFeedForward, p.Experts], Scale(h));
                Add(b + "ffn_up_exps.weight", qt, [h, p.ExpertFeedForward, p.Experts], Scale(h));
            }

            Add(b + "ffn_down_exps.weight", qt, [p.ExpertFeedForward, h, p.Experts], Out(p.ExpertFeedForward));
            if (p.SharedFeedForward > 0 && hybrid)
            {
                int sff = p.SharedFeedForward;
                Add(b + "ffn_gate_inp_shexp.weight", f32, [h], 4 * Scale(h));
                Add(b + "ffn_gate_shexp.weight", qt, [h, sff], Scale(h));
                Add(b + "ffn_up_shexp.weight", qt, [h, sff], Scale(h));
                Add(b + "ffn_down_shexp.weight", qt, [sff, h], Out(sff));
            }
        }

        w.Write(path);
    }

    /// <summary>
    /// Qwen3.5's mrope_section [11, 11, 10] padded to four, as convert_hf_to_gguf.py writes it: the rotated pairs
    /// (n_rot / 2 = 32) split over time/height/width. ggml requires the sections to fit in n_rot, so narrower
    /// (tiny) heads get the same three-way split of their own pairs. Text positions make all sections equal.
    /// </summary>
    private static int[] MRopeSections(int rotatedDims)
    {
        int pairs = rotatedDims / 2, third = pairs / 3, rest = pairs % 3;
        return [third + (rest > 0 ? 1 : 0), third + (rest > 1 ? 1 : 0), third, 0];
    }

    private static void WriteTokenizer(GgufWriter w, ModelPreset p)
    {
        if (p.Architecture == "llama")
        {
            var spm = SentencePieceVocabulary.Create(p.Vocab);
            w.Set("tokenizer.ggml.model", "llama")
             .Set("tokenizer.ggml.tokens", GgufValue.Of(spm.Tokens))
             .Set("tokenizer.ggml.scores", GgufValue.Of(spm.Scores))
             .Set("tokenizer.ggml.token_type", GgufValue.Of(spm.Types))
             .Set("tokenizer.ggml.unknown_token_id", 0u)
             .Set("tokenizer.ggml.bos_token_id", 1u)
             .Set("tokenizer.ggml.eos_token_id", 2u)
             .Set("tokenizer.ggml.add_bos_token", true)
             .Set("tokenizer.ggml.add_eos_token", false);
            return;
        }

        var vocab = ByteLevelVocabulary.Create(p.Vocab);
        w.Set("tokenizer.ggml.model", "gpt2")
         .Set("tokenizer.ggml.pre", p.Architecture == "qwen35moe" ? "qwen35" : "qwen2")
         .Set("tokenizer.ggml.tokens", GgufValue.Of(vocab.Tokens))
         .Set("tokenizer.ggml.token_type", GgufValue.Of(vocab.Types))
         .Set("tokenizer.ggml.merges", GgufValue.Of(vocab.Merges))
         .Set("tokenizer.ggml.eos_token_id", (uint)Array.IndexOf(vocab.Tokens, "<|im_end|>"))
         .Set("tokenizer.ggml.padding_token_id", (uint)Array.IndexOf(vocab.Tokens, "<|endoftext|>"))
         .Set("tokenizer.ggml.bos_token_id", (uint)Array.IndexOf(vocab.Tokens, "<|endoftext|>"))
         .Set("tokenizer.ggml.add_bos_token", false);
    }

    /// <summary>The model name's note of a non-default layer update scale, so results that print the name say it.</summary>
    private static string UpdateScaleLabel(float scale) =>
        scale == 1f ? "" : string.Create(System.Globalization.CultureInfo.InvariantCulture, $", layer update scale {scale:G4}");

    /// <summary>Uniform on ±√3/√fan-in has the variance of the usual 1/√fan-in normal initialisation.</summary>
    private static float Scale(int fanIn) => MathF.Sqrt(3f / fanIn);

    /// <summary>K-quants need rows that are multiples of 256: narrower tensors (tiny presets) fall back to Q8_0 or F32, as llama.cpp's quantizer does.</summary>
    public static GgmlType Fit(GgmlType type, long rowLength) =>
        rowLength % GgmlTypeInfo.BlockSize(type) == 0 ? type
        : rowLength % 32 == 0 ? GgmlType.Q8_0
        : GgmlType.F32;

    /// <summary>Tensors at least this large are written as random Q4_K blocks directly (see <see cref="RandomRows"/>).</summary>
    public const long DirectBlocksThreshold = 1L << 24;

    /// <summary>Random Q4_K blocks for <paramref name="rows"/> rows (the direct path of <see cref="RandomRows"/>).</summary>
    internal static void WriteRandomQ4K(Stream stream, long rows, int cols, float scale, ulong seed) =>
        new RandomRows(GgmlType.Q4_K, cols, rows, scale, 0, seed, direct: true).Write(stream, rows);

    /// <summary>One random part of a tensor: rows per group, uniform on offset ± scale; rows of Cols values (0: the tensor's ne[0]; a 1-D part of a fused bias has its own length).</summary>
    private readonly record struct Part(long Rows, float Scale, float Offset = 0, int Cols = 0);

    /// <summary>
    /// The random rows of one tensor (<paramref name="totalRows"/> rows of <paramref name="cols"/>), written a few rows
    /// at a time and continuing where the last call stopped, so a fused tensor can interleave several of them.
    /// Floats are uniform on offset ± scale (xorshift64*, deterministic in the seed) and quantized to the type.
    /// Large Q4_K tensors are drawn directly as random blocks instead: ggml's Q4_K quantizer searches 20 scale
    /// candidates per 32 values, far too slow for the hundreds of GB of a full-width 397B slice. Every sub-block
    /// gets the full 6-bit scale and min (63) and d, dmin chosen so w = d·63·q − dmin·63 with q uniform in 0..15 is
    /// uniform on 16 levels in ±scale: the same spread as the float path, and the stored values are exactly the
    /// model's weights. Those rows come from per-row seeds and are generated in parallel.
    /// </summary>
    private sealed class RandomRows
    {
        private const int Q4KBlockBytes = 144, Q4KHalf = 7; // q − 7.5 ∈ [−7.5, 7.5]
        private readonly GgmlType _type;
        private readonly int _cols, _rowBytes;
        private readonly float _scale, _offset;
        private readonly ulong _seed;
        private readonly bool _direct;
        private ulong _state;
        private long _row;

        public RandomRows(GgmlType type, int cols, long totalRows, float scale, float offset, ulong seed, bool? direct = null)
        {
            _type = type;
            _cols = cols;
            _rowBytes = (int)GgmlTypeInfo.RowBytes(type, cols);
            _scale = scale;
            _offset = offset;
            _seed = seed;
            _direct = direct ?? (type == GgmlType.Q4_K && totalRows * cols >= DirectBlocksThreshold);
            _state = (seed * 0x9E3779B97F4A7C15UL) | 1;
        }

        public void Write(Stream stream, long rows)
        {
            int rowsPerChunk = Math.Max(1, (_direct ? 1 << 24 : 1 << 22) / Math.Max(_rowBytes, 1));
            var chunk = new byte[(int)Math.Min(rowsPerChunk, Math.Max(rows, 1)) * _rowBytes];
            for (long done = 0; done < rows;)
            {
                int n = (int)Math.Min(rowsPerChunk, rows - done);
                if (_direct)
                {
                    DirectQ4K(chunk, n);
                }
                else
                {
                    Floats(chunk, n);
                }

                stream.Write(chunk, 0, n * _rowBytes);
                done += n;
                _row += n;
            }
        }

        private void Floats(byte[] chunk, int n)
        {
            var values = new float[_cols];
            for (int i = 0; i < n; i++)
            {
                for (int j = 0; j < _cols; j++)
                {
                    // xorshift64*: fast and reproducible; the top 24 bits make a uniform float in [-1, 1).
                    _state ^= _state >> 12;
                    _state ^= _state << 25;
                    _state ^= _state >> 27;
                    float u = ((_state * 0x2545F4914F6CDD1DUL) >> 40) * (2f / (1 << 24)) - 1f;
                    values[j] = _offset + (_scale * u);
                }

                var dst = chunk.AsSpan(i * _rowBytes, _rowBytes);
                if (_type == GgmlType.F32)
                {
                    MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(dst);
                }
                else
                {
                    Quantizer.QuantizeRow(_type, values, dst);
                }
            }
        }

        private void DirectQ4K(byte[] chunk, int n)
        {
            int blocks = _cols / 256, rowBytes = _rowBytes;
            float d = _scale / (63f * (Q4KHalf + 0.5f));
            ushort dBits = Fp16.FromFloat(d), dminBits = Fp16.FromFloat(d * (Q4KHalf + 0.5f));
            long first = _row;
            ulong seed = _seed;
            Parallel.For(0, n, i =>
            {
                var row = chunk.AsSpan(i * rowBytes, rowBytes);
                ulong state = ((seed * 0x9E3779B97F4A7C15UL) ^ ((ulong)(first + i) * 0xD1B54A32D192ED03UL)) | 1;
                for (int b = 0; b < blocks; b++)
                {
                    var blk = row.Slice(b * Q4KBlockBytes, Q4KBlockBytes);
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(blk, dBits);
                    System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(blk[2..], dminBits);
                    blk.Slice(4, 12).Fill(0xFF); // all eight 6-bit scales and mins = 63 in ggml's packing
                    var qs = MemoryMarshal.Cast<byte, ulong>(blk.Slice(16, 128));
                    for (int k = 0; k < qs.Length; k++)
                    {
                        state ^= state >> 12;
                        state ^= state << 25;
                        state ^= state >> 27;
                        qs[k] = state * 0x2545F4914F6CDD1DUL; // 16 random nibbles
                    }
                }
            });
        }
    }

    /// <summary>llama_ftype of a uniformly quantized file (llama.h), so tools print the right name.</summary>
    private static uint FileType(GgmlType t) => t switch
    {
        GgmlType.F32 => 0,
        GgmlType.F16 => 1,
        GgmlType.Q4_0 => 2,
        GgmlType.Q4_1 => 3,
        GgmlType.Q5_0 => 8,
        GgmlType.Q5_1 => 9,
        GgmlType.Q5_K => 16, // Q5_K_S: the preset whose tensors are all Q5_K but a few
        GgmlType.Q8_0 => 7,
        GgmlType.Q2_K => 10,
        GgmlType.Q3_K => 11,
        GgmlType.Q4_K => 14,
        GgmlType.Q6_K => 18,
        GgmlType.BF16 => 32,
        _ => throw new NotSupportedException($"cannot synthesize a model quantized as {t} (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, Q2_K, Q3_K)"),
    };
}
