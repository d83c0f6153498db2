using System.Numerics.Tensors;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Model;

/// <summary>
/// Gated DeltaNet linear attention (Qwen3.5's recurrent layers) as llama.cpp's qwen35moe graph and its
/// gated_delta_net / ssm_conv CPU ops compute it, one token at a time:
/// <list type="number">
/// <item>qkv = W_qkv·x (q: key heads × d, k: key heads × d, v: value heads × d), z = W_gate·x, β = σ(W_β·x),
/// g = softplus(W_α·x + dt_bias) · a (a = −exp(A_log), stored so in the GGUF).</item>
/// <item>A causal depthwise convolution of width K over the last K qkv vectors (the K−1 previous ones are the conv
/// state), then SiLU.</item>
/// <item>q and k L2-normalized per head; value head h reads key head h mod key heads (the GGUF stores V heads in
/// the tiled order ggml's broadcast uses).</item>
/// <item>Per value head the delta rule on the d×d state S: S ← exp(g)·S; u = β(v − S k); S ← S + u kᵀ; o = S q / √d.</item>
/// <item>o normed per head (RMSNorm with ssm_norm) times SiLU(z), then the output projection.</item>
/// </list>
/// The conv state and S are the layer's memory between tokens (llama.cpp's recurrent cache); <see cref="Reset"/> zeroes them.
/// </summary>
public sealed partial class GatedDeltaNet : IAttentionLayer, IParallelBody
{
    private readonly ModelConfig _c;
    private readonly ComputePool _pool;
    private readonly WeightMatrix _wQkv, _wGate, _wBeta, _wAlpha, _wOut;
    private readonly float[] _conv, _dtBias, _a, _norm;
    private readonly int _kernel, _channels, _keyDim, _d, _kHeads, _vHeads;
    private readonly float[] _qkv, _mixed, _z, _beta, _alpha, _o;
    private readonly float[] _convState, _state;
    private readonly QuantizedVector _xq, _oq;

    public GatedDeltaNet(ModelConfig c, ResidentTensors w, int layer, ComputePool pool)
    {
        _c = c;
        _pool = pool;
        _d = c.SsmStateSize;
        _kHeads = c.SsmKeyHeads;
        _vHeads = c.SsmValueHeads;
        _kernel = c.SsmConvKernel;
        _keyDim = _kHeads * _d;
        int valueDim = c.SsmInnerSize;
        _channels = (2 * _keyDim) + valueDim;
        string p = $"blk.{layer}.";
        _wQkv = w.Matrix(p + "attn_qkv.weight", _channels, c.Hidden);
        _wGate = w.Matrix(p + "attn_gate.weight", valueDim, c.Hidden);
        _wBeta = w.Matrix(p + "ssm_beta.weight", _vHeads, c.Hidden);
        _wAlpha = w.Matrix(p + "ssm_alpha.weight", _vHeads, c.Hidden);
        _wOut = w.Matrix(p + "ssm_out.weight", c.Hidden, valueDim);
        _conv = w.Vector(p + "ssm_conv1d.weight", _channels * _kernel); // {K, channels}: channel c's taps at c·K, oldest first
        _dtBias = w.Vector(p + "ssm_dt.bias", _vHeads);
        _a = w.Vector(p + "ssm_a", _vHeads);
        _norm = w.Vector(p + "ssm_norm.weight", _d);
        _qkv = new float[_channels];
        _mixed = new float[_channels];
        _z = new float[valueDim];
        _beta = new float[_vHeads];
        _alpha = new float[_vHeads];
        _o = new float[valueDim];
        _convState = new float[_channels * Math.Max(_kernel - 1, 0)];
        _state = new float[_vHeads * _d * _d];
        _xq = new QuantizedVector(c.Hidden);
        _oq = new QuantizedVector(valueDim);
    }

    /// <summary>Bytes of recurrent memory (conv state + delta-rule state) this layer keeps per sequence.</summary>
    public long StateBytes => sizeof(float) * ((long)_convState.Length + _state.Length);

    public void Reset()
    {
        _convState.AsSpan().Clear();
        _state.AsSpan().Clear();
    }

    public void Forward(ReadOnlySpan<float> x, int pos, Span<float> output)
    {
        _xq.Set(x);
        _pool.MatVec2(_wQkv, _wGate, _xq, _qkv, _z);
        _pool.MatVec2(_wBeta, _wAlpha, _xq, _beta, _alpha);

        Mix();
        _oq.Set(_o);
        _pool.MatVec(_wOut, _oq, output);
    }

    /// <summary>
    /// The part after the projections, for one token whose projections are in _qkv, _z, _beta, _alpha: causal conv
    /// (advancing the conv state), q/k norms, the delta rule (advancing S), output norm and gate → _o.
    /// </summary>
    private void Mix()
    {
        // Causal conv: window = (K−1 previous inputs, this input), summed oldest first as ggml's ssm_conv does.
        int past = _kernel - 1;
        for (int ch = 0; ch < _channels; ch++)
        {
            var taps = _conv.AsSpan(ch * _kernel, _kernel);
            var hist = _convState.AsSpan(ch * past, past);
            float sum = 0;
            for (int i = 0; i < past; i++)
            {
                sum += hist[i] * taps[i];
            }

            sum += _qkv[ch] * taps[past];
            if (past > 0)
            {
                hist[1..].CopyTo(hist);
                hist[past - 1] = _qkv[ch];
            }

            _mixed[ch] = sum / (1f + MathF.Exp(-sum));
        }

        float eps = _c.NormEpsilon;
        for (int h = 0; h < 2 * _kHeads; h++)
        {
            L2Normalize(_mixed.AsSpan(h * _d, _d), eps); // q heads, then k heads
        }

        for (int h = 0; h < _vHeads; h++)
        {
            float gate = Softplus(_alpha[h] + _dtBias[h]) * _a[h];
            _alpha[h] = MathF.Exp(gate); // the decay this token applies to the state
            _beta[h] = Ops.Sigmoid(_beta[h]);
        }

        _pool.For(_vHeads, this);

        for (int h = 0; h < _vHeads; h++)
        {
            var oh = _o.AsSpan(h * _d, _d);
            VectorOps.RmsNorm(oh, _norm, eps, oh);
            var zh = _z.AsSpan(h * _d, _d);
            for (int i = 0; i < _d; i++)
            {
                float g = zh[i];
                oh[i] *= g / (1f + MathF.Exp(-g));
            }
        }
    }

    /// <summary>The delta rule for value heads [start, end). State row j (value dim) holds S[j, ·] over the key dim.</summary>
    public void Execute(int start, int end)
    {
        int d = _d;
        float scale = 1f / MathF.Sqrt(d);
        for (int h = start; h < end; h++)
        {
            int kh = h % _kHeads;
            var q = _mixed.AsSpan(kh * d, d);
            var k = _mixed.AsSpan(_keyDim + (kh * d), d);
            var v = _mixed.AsSpan((2 * _keyDim) + (h * d), d);
            var s = _state.AsSpan(h * d * d, d * d);
            var o = _o.AsSpan(h * d, d);
            float decay = _alpha[h], beta = _beta[h];
            TensorPrimitives.Multiply(s, decay, s);
            for (int j = 0; j < d; j++)
            {
                var row = s.Slice(j * d, d);
                float u = (v[j] - TensorPrimitives.Dot(row, k)) * beta;
                TensorPrimitives.MultiplyAdd(k, u, row, row);
                o[j] = TensorPrimitives.Dot(row, q) * scale;
            }
        }
    }

    /// <summary>x / max(‖x‖, eps), the sum of squares in double as ggml_l2_norm accumulates it.</summary>
    private static void L2Normalize(Span<float> x, float eps)
    {
        double sum = 0;
        foreach (float v in x)
        {
            sum += (double)v * v;
        }

        TensorPrimitives.Multiply(x, 1f / MathF.Max(MathF.Sqrt((float)sum), eps), x);
    }

    /// <summary>log(1 + eˣ), linear above 20 as ggml's softplus.</summary>
    private static float Softplus(float x) => x > 20f ? x : MathF.Log(1f + MathF.Exp(x));
}
