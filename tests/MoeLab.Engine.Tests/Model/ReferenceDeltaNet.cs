namespace MoeLab.Engine.Tests.Model;

/// <summary>
/// A plain double-precision Gated DeltaNet layer (Qwen3.5 linear attention) for a whole sequence, written from the
/// equations rather than from the engine: the causal convolution reads the window of raw inputs directly (zeros
/// before the sequence start) instead of a rolling conv state, and the delta-rule state S_t is rebuilt from S = 0 for
/// every position t, so nothing is carried between positions. GGUF semantics as llama.cpp reads them: a = −exp(A_log)
/// is stored, value head h reads key head h mod (key heads), L2 norm divides by max(‖x‖, eps).
/// </summary>
internal sealed class ReferenceDeltaNet
{
    private readonly double[][] _qkv, _gate, _beta, _alpha, _out, _conv;
    private readonly double[] _dt, _a, _norm;
    private readonly int _d, _kHeads, _vHeads, _kernel;
    private readonly double _eps;

    public ReferenceDeltaNet(ReferenceMoe model, int layer, double eps)
    {
        var f = model.Gguf;
        string p = f.Architecture + ".", b = $"blk.{layer}.";
        _d = (int)f.GetInt(p + "ssm.state_size");
        _kHeads = (int)f.GetInt(p + "ssm.group_count");
        _vHeads = (int)f.GetInt(p + "ssm.time_step_rank");
        _kernel = (int)f.GetInt(p + "ssm.conv_kernel");
        _eps = eps;
        _qkv = model.T(b + "attn_qkv.weight");
        _gate = model.T(b + "attn_gate.weight");
        _beta = model.T(b + "ssm_beta.weight");
        _alpha = model.T(b + "ssm_alpha.weight");
        _out = model.T(b + "ssm_out.weight");
        _conv = model.T(b + "ssm_conv1d.weight"); // one row of K taps per channel, oldest input first
        _dt = model.V(b + "ssm_dt.bias");
        _a = model.V(b + "ssm_a");
        _norm = model.V(b + "ssm_norm.weight");
    }

    /// <summary>The layer's output (before the residual) at every position of the normed inputs <paramref name="xn"/>.</summary>
    public double[][] Run(double[][] xn)
    {
        int n = xn.Length, d = _d, keyDim = _kHeads * d;
        var raw = xn.Select(x => ReferenceMoe.MatVec(_qkv, x)).ToArray();
        int channels = raw[0].Length;

        // Convolved, activated and normalized q, k, v per position.
        var q = new double[n][];
        var k = new double[n][];
        var v = new double[n][];
        for (int t = 0; t < n; t++)
        {
            var c = new double[channels];
            for (int ch = 0; ch < channels; ch++)
            {
                double sum = 0;
                for (int i = 0; i < _kernel; i++)
                {
                    int s = t - (_kernel - 1) + i;
                    sum += s < 0 ? 0 : _conv[ch][i] * raw[s][ch];
                }

                c[ch] = sum / (1 + Math.Exp(-sum));
            }

            q[t] = L2PerHead(c[..keyDim]);
            k[t] = L2PerHead(c[keyDim..(2 * keyDim)]);
            v[t] = c[(2 * keyDim)..];
        }

        var result = new double[n][];
        for (int t = 0; t < n; t++)
        {
            var o = new double[_vHeads * d];
            for (int h = 0; h < _vHeads; h++)
            {
                int kh = h % _kHeads;
                var S = new double[d, d]; // S[value index, key index], rebuilt from the start of the sequence
                for (int s = 0; s <= t; s++)
                {
                    double alpha = ReferenceMoe.Dot(_alpha[h], xn[s]) + _dt[h];
                    double softplus = alpha > 20 ? alpha : Math.Log(1 + Math.Exp(alpha));
                    double decay = Math.Exp(softplus * _a[h]);
                    double beta = 1 / (1 + Math.Exp(-ReferenceMoe.Dot(_beta[h], xn[s])));
                    for (int i = 0; i < d; i++)
                    {
                        double sk = 0;
                        for (int j = 0; j < d; j++)
                        {
                            S[i, j] *= decay;
                            sk += S[i, j] * k[s][(kh * d) + j];
                        }

                        double u = beta * (v[s][(h * d) + i] - sk);
                        for (int j = 0; j < d; j++)
                        {
                            S[i, j] += u * k[s][(kh * d) + j];
                        }
                    }
                }

                for (int i = 0; i < d; i++)
                {
                    double sum = 0;
                    for (int j = 0; j < d; j++)
                    {
                        sum += S[i, j] * q[t][(kh * d) + j];
                    }

                    o[(h * d) + i] = sum / Math.Sqrt(d);
                }
            }

            // Gated RMSNorm per value head: norm(o_h) ⊙ ssm_norm ⊙ silu(z_h).
            var z = ReferenceMoe.MatVec(_gate, xn[t]);
            for (int h = 0; h < _vHeads; h++)
            {
                double ss = 0;
                for (int i = 0; i < d; i++)
                {
                    ss += o[(h * d) + i] * o[(h * d) + i];
                }

                double scale = 1 / Math.Sqrt((ss / d) + _eps);
                for (int i = 0; i < d; i++)
                {
                    double g = z[(h * d) + i];
                    o[(h * d) + i] *= scale * _norm[i] * g / (1 + Math.Exp(-g));
                }
            }

            result[t] = ReferenceMoe.MatVec(_out, o);
        }

        return result;
    }

    private double[] L2PerHead(double[] x)
    {
        var y = new double[x.Length];
        for (int h = 0; h < x.Length / _d; h++)
        {
            double ss = 0;
            for (int i = 0; i < _d; i++)
            {
                ss += x[(h * _d) + i] * x[(h * _d) + i];
            }

            double scale = 1 / Math.Max(Math.Sqrt(ss), _eps);
            for (int i = 0; i < _d; i++)
            {
                y[(h * _d) + i] = x[(h * _d) + i] * scale;
            }
        }

        return y;
    }
}
