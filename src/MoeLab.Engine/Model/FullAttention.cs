using System.Numerics.Tensors;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Model;

/// <summary>
/// Grouped-query self-attention with a KV cache, as llama.cpp's qwen3moe and llama graphs compute it: Q/K/V
/// projections, optional per-head RMSNorm of Q and K (Qwen3), NEOX or normal RoPE over the first
/// <see cref="ModelConfig.RopeDimensions"/> of each head, softmax(QKᵀ/√d) V over the cached positions (optionally a
/// sliding window), output projection. Qwen3.5 (<see cref="ModelConfig.GatedAttention"/>) projects Q and an output
/// gate jointly (per head: d query values, then d gate values) and multiplies the attention output by sigmoid(gate)
/// before the output projection. Buffers are allocated once; decoding a token allocates nothing.
/// </summary>
public sealed partial class FullAttention : IAttentionLayer, IParallelBody
{
    private readonly ModelConfig _c;
    private readonly ComputePool _pool;
    private readonly WeightMatrix _wq, _wk, _wv, _wo;
    private readonly float[]? _qNorm, _kNorm;
    private readonly float[]? _bq, _bk, _bv, _bo; // optional projection biases (Qwen2-style checkpoints, llama's attn_output.bias)
    private readonly bool _neox;
    private readonly bool _f16Cache;
    private readonly float[] _q, _k, _v, _att, _out, _scores;
    private readonly float[]? _qGate, _gate;
    private readonly float[] _kCache, _vCache;
    private readonly int _maxContext;
    private readonly RopeTable _rope;
    private readonly QuantizedVector _xq, _oq;
    private int _pos;

    public FullAttention(ModelConfig c, ResidentTensors w, int layer, int maxContext, ComputePool pool, RopeTable rope, bool neox, KvCacheType kvCache = KvCacheType.F32)
    {
        _c = c;
        _f16Cache = kvCache == KvCacheType.F16;
        _pool = pool;
        _rope = rope;
        _neox = neox;
        _maxContext = maxContext;
        string p = $"blk.{layer}.";
        int qRows = c.Heads * c.KeyLength * (c.GatedAttention ? 2 : 1), kRows = c.KvHeads * c.KeyLength, vRows = c.KvHeads * c.ValueLength;
        if (w.Has(p + "attn_qkv.weight"))
        {
            // A fused projection (llama.cpp's create_tensor_qkv): Q rows, then K, then V; each part is used as its own
            // matrix, so the products are exactly those of separate tensors.
            var parts = w.Split(p + "attn_qkv.weight", c.Hidden, qRows, kRows, vRows);
            (_wq, _wk, _wv) = (parts[0], parts[1], parts[2]);
            if (w.Has(p + "attn_qkv.bias"))
            {
                float[] b = w.Vector(p + "attn_qkv.bias", qRows + kRows + vRows);
                (_bq, _bk, _bv) = (b[..qRows], b[qRows..(qRows + kRows)], b[(qRows + kRows)..]);
            }
        }
        else
        {
            _wq = w.Matrix(p + "attn_q.weight", qRows, c.Hidden);
            _wk = w.Matrix(p + "attn_k.weight", kRows, c.Hidden);
            _wv = w.Matrix(p + "attn_v.weight", vRows, c.Hidden);
            _bq = Optional(w, p + "attn_q.bias", qRows);
            _bk = Optional(w, p + "attn_k.bias", kRows);
            _bv = Optional(w, p + "attn_v.bias", vRows);
        }

        _wo = w.Matrix(p + "attn_output.weight", c.Hidden, c.Heads * c.ValueLength);
        _bo = Optional(w, p + "attn_output.bias", c.Hidden);
        _qNorm = w.Has(p + "attn_q_norm.weight") ? w.Vector(p + "attn_q_norm.weight", c.KeyLength) : null;
        _kNorm = w.Has(p + "attn_k_norm.weight") ? w.Vector(p + "attn_k_norm.weight", c.KeyLength) : null;
        _q = new float[c.Heads * c.KeyLength];
        _k = new float[c.KvHeads * c.KeyLength];
        _v = new float[c.KvHeads * c.ValueLength];
        _out = new float[c.Heads * c.ValueLength];
        if (c.GatedAttention)
        {
            _qGate = new float[2 * c.Heads * c.KeyLength];
            _gate = new float[c.Heads * c.KeyLength];
        }

        _scores = new float[c.Heads * maxContext];
        _att = _scores;
        _kCache = new float[(long)maxContext * c.KvHeads * c.KeyLength];
        _vCache = new float[(long)maxContext * c.KvHeads * c.ValueLength];
        _xq = new QuantizedVector(c.Hidden);
        _oq = new QuantizedVector(c.Heads * c.ValueLength);
    }

    /// <summary>Positions are overwritten as they are decoded again, so forgetting the sequence needs no clearing.</summary>
    public void Reset() => _pos = 0;

    /// <summary>Attends token at position <paramref name="pos"/> (its normed input <paramref name="x"/>) and writes the projected output.</summary>
    public void Forward(ReadOnlySpan<float> x, int pos, Span<float> output)
    {
        if (pos >= _maxContext)
        {
            throw new InvalidOperationException($"context full: position {pos} exceeds the {_maxContext}-token KV cache");
        }

        _pos = pos;
        _xq.Set(x);
        int d = _c.KeyLength;
        if (_qGate is not null)
        {
            _pool.MatVec(_wq, _xq, _qGate);
            AddBias(_qGate, _bq);
            for (int h = 0; h < _c.Heads; h++)
            {
                _qGate.AsSpan(2 * h * d, d).CopyTo(_q.AsSpan(h * d, d));
                _qGate.AsSpan((2 * h * d) + d, d).CopyTo(_gate!.AsSpan(h * d, d));
            }
        }
        else
        {
            _pool.MatVec(_wq, _xq, _q);
            AddBias(_q, _bq);
        }

        _pool.MatVec2(_wk, _wv, _xq, _k, _v);
        AddBias(_k, _bk);
        AddBias(_v, _bv);

        Attend(pos);
        _oq.Set(_out);
        _pool.MatVec(_wo, _oq, output);
        AddBias(output, _bo);
    }

    /// <summary>
    /// The part after the projections, for the token at <paramref name="pos"/> whose q, k, v (and gate) are in
    /// _q, _k, _v (_gate): per-head norms, RoPE, KV-cache write, attention over the cache, output gate → _out.
    /// </summary>
    private void Attend(int pos)
    {
        _pos = pos;
        int d = _c.KeyLength;
        for (int h = 0; h < _c.Heads; h++)
        {
            var qh = _q.AsSpan(h * d, d);
            if (_qNorm is not null)
            {
                VectorOps.RmsNorm(qh, _qNorm, _c.NormEpsilon, qh);
            }

            _rope.Apply(qh, pos, _neox);
        }

        for (int h = 0; h < _c.KvHeads; h++)
        {
            var kh = _k.AsSpan(h * d, d);
            if (_kNorm is not null)
            {
                VectorOps.RmsNorm(kh, _kNorm, _c.NormEpsilon, kh);
            }

            _rope.Apply(kh, pos, _neox);
        }

        _k.CopyTo(_kCache.AsSpan(pos * _k.Length, _k.Length));
        _v.CopyTo(_vCache.AsSpan(pos * _v.Length, _v.Length));
        if (_f16Cache)
        {
            // An F16 cache entry, and the query meeting F16 keys in ggml's F16 dot (its vec_dot_type is F16).
            RoundToF16(_kCache.AsSpan(pos * _k.Length, _k.Length));
            RoundToF16(_vCache.AsSpan(pos * _v.Length, _v.Length));
            RoundToF16(_q);
        }

        _pool.For(_c.Heads, this);
        if (_gate is not null)
        {
            for (int i = 0; i < _out.Length; i++)
            {
                _out[i] *= Ops.Sigmoid(_gate[i]);
            }
        }
    }

    private static void RoundToF16(Span<float> x)
    {
        for (int i = 0; i < x.Length; i++)
        {
            x[i] = (float)(Half)x[i];
        }
    }

    private static float[]? Optional(ResidentTensors w, string name, int length) => w.Has(name) ? w.Vector(name, length) : null;

    private static void AddBias(Span<float> y, float[]? bias)
    {
        if (bias is not null)
        {
            TensorPrimitives.Add(y[..bias.Length], bias, y);
        }
    }

    /// <summary>One range of heads: scores over the cached positions, softmax, weighted sum of values.</summary>
    public void Execute(int start, int end)
    {
        int d = _c.KeyLength, dv = _c.ValueLength, group = _c.Heads / _c.KvHeads;
        int first = _c.SlidingWindow > 0 ? Math.Max(0, _pos - _c.SlidingWindow + 1) : 0;
        int n = _pos + 1 - first;
        float scale = 1f / MathF.Sqrt(d);
        for (int h = start; h < end; h++)
        {
            int kvh = h / group;
            var q = _q.AsSpan(h * d, d);
            var scores = _att.AsSpan(h * _maxContext, n);
            for (int t = 0; t < n; t++)
            {
                var k = _kCache.AsSpan(((first + t) * _k.Length) + (kvh * d), d);
                scores[t] = TensorPrimitives.Dot(q, k) * scale;
            }

            TensorPrimitives.SoftMax(scores, scores);
            if (_f16Cache)
            {
                RoundToF16(scores); // the attention weights meet F16 values the same way
            }
            var o = _out.AsSpan(h * dv, dv);
            o.Clear();
            for (int t = 0; t < n; t++)
            {
                var v = _vCache.AsSpan(((first + t) * _v.Length) + (kvh * dv), dv);
                TensorPrimitives.MultiplyAdd(v, scores[t], o, o);
            }
        }
    }
}

/// <summary>
/// Rotary position embedding angles, precomputed per position (llama.cpp: theta_i = pos · base^(−2i/n_rot)), with the
/// file's context scaling (<see cref="RopeScaling"/>) applied as ggml's rope_yarn does.
/// </summary>
public sealed class RopeTable
{
    private readonly float[] _cos, _sin;
    private readonly int _half;

    public RopeTable(int rotatedDims, float freqBase, int maxContext, RopeScaling? scaling = null)
    {
        var s = scaling ?? RopeScaling.None;
        _half = rotatedDims / 2;
        _cos = new float[maxContext * _half];
        _sin = new float[maxContext * _half];
        // YaRN's correction range (ggml_rope_yarn_corr_dims, β_fast 32, β_slow 1): pairs below it keep their original
        // angle, pairs above it are interpolated, a linear ramp in between.
        float CorrDim(float rotations) => rotatedDims * MathF.Log(s.OriginalContext / (rotations * 2 * MathF.PI)) / (2 * MathF.Log(freqBase));
        float low = MathF.Max(0, MathF.Floor(CorrDim(32))), high = MathF.Min(rotatedDims - 1, MathF.Ceiling(CorrDim(1)));
        bool blend = s.Yarn && s.FreqScale != 1f;
        float mscale = s.MScale;
        // Angles in float, each pair's from the previous one times base^(−2/n_rot), as ggml's rope cache computes them:
        // scaled angles then round as llama.cpp's do.
        float thetaScale = MathF.Pow(freqBase, -2f / rotatedDims);
        for (int p = 0; p < maxContext; p++)
        {
            float extrapolated = p;
            for (int i = 0; i < _half; i++)
            {
                float theta = s.FreqScale * extrapolated;
                if (blend)
                {
                    float mix = 1 - Math.Clamp((i - low) / MathF.Max(0.001f, high - low), 0, 1);
                    theta = (theta * (1 - mix)) + (extrapolated * mix);
                }

                _cos[(p * _half) + i] = MathF.Cos(theta) * mscale;
                _sin[(p * _half) + i] = MathF.Sin(theta) * mscale;
                extrapolated *= thetaScale;
            }
        }
    }

    public int RotatedDims => _half * 2;

    /// <summary>
    /// Rotates the first <see cref="RotatedDims"/> of one head. NEOX pairs element i with i + n_rot/2 (Qwen, GPT-NeoX);
    /// normal pairs 2i with 2i+1 (Llama, Mixtral).
    /// </summary>
    public void Apply(Span<float> head, int pos, bool neox)
    {
        var cos = _cos.AsSpan(pos * _half, _half);
        var sin = _sin.AsSpan(pos * _half, _half);
        for (int i = 0; i < _half; i++)
        {
            int a = neox ? i : 2 * i, b = neox ? i + _half : (2 * i) + 1;
            float x0 = head[a], x1 = head[b];
            head[a] = (x0 * cos[i]) - (x1 * sin[i]);
            head[b] = (x0 * sin[i]) + (x1 * cos[i]);
        }
    }
}

/// <summary>
/// How the attention KV cache rounds. F32 keeps K and V as computed. F16 gives llama.cpp's default cache numerics
/// (its type_k/type_v F16, without flash attention): each cached K and V value is rounded to F16, and, because ggml
/// dots F16 rows against F16 operands, so are the query and the softmax weights before they meet the cache. The
/// values are still stored as floats: this selects the arithmetic, not the cache's memory size. The default stays F32
/// (MoeLab's own results are not made less precise to look like a peer). Measured 2026-11-25 against llama.cpp's
/// default cache on F32 weights: qwen3moe 2.8e-4 (F32 cache 2.9e-3); the llama graph (Mixtral) only 2.3e-3 (3.0e-3).
/// </summary>
public enum KvCacheType
{
    F32,
    F16,
}
