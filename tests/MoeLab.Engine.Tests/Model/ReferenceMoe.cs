using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Tests.Model;

/// <summary>
/// An independent, deliberately plain double-precision forward pass of qwen3moe, qwen35moe (Gated DeltaNet layers via
/// <see cref="ReferenceDeltaNet"/>, gated full attention, shared expert) and llama/Mixtral, written from the models'
/// equations, not from the engine: it reads the GGUF's tensors into double arrays and recomputes every position's
/// attention (and every position's recurrent state) from scratch. Slow; for tiny models only.
/// </summary>
internal sealed class ReferenceMoe
{
    private readonly GgufFile _f;
    private readonly byte[] _bytes;
    private readonly string _p;

    public ReferenceMoe(string path)
    {
        _f = GgufFile.Open(path);
        _bytes = File.ReadAllBytes(path);
        _p = _f.Architecture + ".";
    }

    private int I(string k) => (int)_f.GetInt(_p + k);

    /// <summary>A tensor as rows × cols doubles (ne[1] rows of ne[0]); higher dims fold into rows.</summary>
    internal double[][] T(string name)
    {
        var t = _f.Tensor(name);
        int cols = (int)t.Dim(0);
        long rows = t.ElementCount / cols;
        int rowBytes = (int)GgmlTypeInfo.RowBytes(t.Type, cols);
        var result = new double[rows][];
        var tmp = new float[cols];
        for (long r = 0; r < rows; r++)
        {
            Dequantizer.DequantizeRow(t.Type, _bytes.AsSpan((int)(t.AbsoluteOffset + (r * rowBytes)), rowBytes), tmp);
            result[r] = tmp.Select(v => (double)v).ToArray();
        }

        return result;
    }

    internal double[] V(string name) => T(name).SelectMany(r => r).ToArray();

    internal bool Has(string name) => _f.FindTensor(name) is not null;

    internal GgufFile Gguf => _f;

    public record Routing(int Layer, int[] Experts, double[] Weights);

    /// <summary>Logits at every position of <paramref name="tokens"/> and the routing chosen per position and layer.</summary>
    public (double[][] Logits, List<Routing>[] Routes) Run(int[] tokens)
    {
        int hidden = I("embedding_length"), layers = I("block_count") - (int)_f.GetInt(_p + "nextn_predict_layers", 0), heads = I("attention.head_count"), kvHeads = I("attention.head_count_kv");
        int hd = (int)_f.GetInt(_p + "attention.key_length", hidden / heads);
        int nExp = I("expert_count"), k = I("expert_used_count");
        double eps = _f.GetDouble(_p + "attention.layer_norm_rms_epsilon", 1e-6), theta = _f.GetDouble(_p + "rope.freq_base", 10000);
        int nRot = (int)_f.GetInt(_p + "rope.dimension_count", hd);
        bool neox = _f.Architecture != "llama";
        bool qwen35 = _f.Architecture == "qwen35moe";
        int interval = (int)_f.GetInt(_p + "full_attention_interval", qwen35 ? 4 : 0);
        var emb = T("token_embd.weight");
        var output = _f.FindTensor("output.weight") is null ? emb : T("output.weight");
        int n = tokens.Length;
        var x = tokens.Select(t => (double[])emb[t].Clone()).ToArray();
        var routes = Enumerable.Range(0, n).Select(_ => new List<Routing>()).ToArray();
        for (int l = 0; l < layers; l++)
        {
            string b = $"blk.{l}.";
            var an = V(b + "attn_norm.weight");
            if (interval > 0 && (l + 1) % interval != 0)
            {
                var mixed = new ReferenceDeltaNet(this, l, eps).Run(x.Select(v => RmsNorm(v, an, eps)).ToArray());
                for (int t = 0; t < n; t++)
                {
                    for (int i = 0; i < hidden; i++)
                    {
                        x[t][i] += mixed[t][i];
                    }
                }

                Ffn(b, x, routes, l, nExp, k, eps, hidden);
                continue;
            }

            var wq = T(b + "attn_q.weight");
            var wk = T(b + "attn_k.weight");
            var wv = T(b + "attn_v.weight");
            var wo = T(b + "attn_output.weight");
            var qn = _f.FindTensor(b + "attn_q_norm.weight") is null ? null : V(b + "attn_q_norm.weight");
            var kn = _f.FindTensor(b + "attn_k_norm.weight") is null ? null : V(b + "attn_k_norm.weight");
            var Q = new double[n][];
            var gates = new double[n][];
            var K = new double[n][];
            var Vv = new double[n][];
            for (int t = 0; t < n; t++)
            {
                var xn = RmsNorm(x[t], an, eps);
                Q[t] = Biased(MatVec(wq, xn), b + "attn_q.bias");
                if (qwen35)
                {
                    // Joint projection, per head: hd query rows then hd output-gate rows.
                    var joint = Q[t];
                    Q[t] = new double[heads * hd];
                    gates[t] = new double[heads * hd];
                    for (int h = 0; h < heads; h++)
                    {
                        Array.Copy(joint, 2 * h * hd, Q[t], h * hd, hd);
                        Array.Copy(joint, (2 * h * hd) + hd, gates[t], h * hd, hd);
                    }
                }

                K[t] = Biased(MatVec(wk, xn), b + "attn_k.bias");
                Vv[t] = Biased(MatVec(wv, xn), b + "attn_v.bias");
                for (int h = 0; h < heads; h++)
                {
                    HeadNormRope(Q[t], h * hd, hd, qn, eps, t, theta, nRot, neox);
                }

                for (int h = 0; h < kvHeads; h++)
                {
                    HeadNormRope(K[t], h * hd, hd, kn, eps, t, theta, nRot, neox);
                }
            }

            for (int t = 0; t < n; t++)
            {
                var att = new double[heads * hd];
                for (int h = 0; h < heads; h++)
                {
                    int g = h / (heads / kvHeads);
                    var s = new double[t + 1];
                    for (int u = 0; u <= t; u++)
                    {
                        double dot = 0;
                        for (int i = 0; i < hd; i++)
                        {
                            dot += Q[t][(h * hd) + i] * K[u][(g * hd) + i];
                        }

                        s[u] = dot / Math.Sqrt(hd);
                    }

                    double max = s.Max(), sum = 0;
                    for (int u = 0; u <= t; u++)
                    {
                        s[u] = Math.Exp(s[u] - max);
                        sum += s[u];
                    }

                    for (int u = 0; u <= t; u++)
                    {
                        for (int i = 0; i < hd; i++)
                        {
                            att[(h * hd) + i] += s[u] / sum * Vv[u][(g * hd) + i];
                        }
                    }
                }

                if (qwen35)
                {
                    for (int i = 0; i < att.Length; i++)
                    {
                        att[i] *= 1 / (1 + Math.Exp(-gates[t][i]));
                    }
                }

                var o = Biased(MatVec(wo, att), b + "attn_output.bias");
                for (int i = 0; i < hidden; i++)
                {
                    x[t][i] += o[i];
                }
            }

            Ffn(b, x, routes, l, nExp, k, eps, hidden);
        }

        var on = V("output_norm.weight");
        var result = x.Select(v => MatVec(output, RmsNorm(v, on, eps))).ToArray();
        return (result, routes);
    }

    /// <summary>RMSNorm → router softmax → top-k renormalized → experts (+ the sigmoid-gated shared expert) → residual.</summary>
    private void Ffn(string b, double[][] x, List<Routing>[] routes, int l, int nExp, int k, double eps, int hidden)
    {
        int n = x.Length;
        var fn = V(b + (Has(b + "ffn_norm.weight") ? "ffn_norm.weight" : "post_attention_norm.weight"));
        bool shared = Has(b + "ffn_gate_shexp.weight");
        var sGate = shared ? T(b + "ffn_gate_shexp.weight") : null;
        var sUp = shared ? T(b + "ffn_up_shexp.weight") : null;
        var sDown = shared ? T(b + "ffn_down_shexp.weight") : null;
        var sInp = shared ? V(b + "ffn_gate_inp_shexp.weight") : null;
        var router = T(b + "ffn_gate_inp.weight");
        var gate = T(b + "ffn_gate_exps.weight");
        var up = T(b + "ffn_up_exps.weight");
        var down = T(b + "ffn_down_exps.weight");
        int ff = gate.Length / nExp;
        for (int t = 0; t < n; t++)
        {
            var xn = RmsNorm(x[t], fn, eps);
            var logits = MatVec(router, xn);
            double m = logits.Max();
            var p = logits.Select(v => Math.Exp(v - m)).ToArray();
            double ps = p.Sum();
            p = p.Select(v => v / ps).ToArray();
            int[] chosen = Enumerable.Range(0, nExp).OrderByDescending(e => p[e]).ThenBy(e => e).Take(k).ToArray();
            double wsum = chosen.Sum(e => p[e]);
            double[] weights = chosen.Select(e => p[e] / wsum).ToArray();
            routes[t].Add(new Routing(l, chosen, weights));
            var acc = new double[hidden];
            for (int j = 0; j < k; j++)
            {
                int e = chosen[j];
                var hbuf = new double[ff];
                for (int r = 0; r < ff; r++)
                {
                    double g = Dot(gate[(e * ff) + r], xn), u = Dot(up[(e * ff) + r], xn);
                    hbuf[r] = g / (1 + Math.Exp(-g)) * u;
                }

                for (int r = 0; r < hidden; r++)
                {
                    acc[r] += weights[j] * Dot(down[(e * hidden) + r], hbuf);
                }
            }

            if (shared)
            {
                double gs = 1 / (1 + Math.Exp(-Dot(sInp!, xn)));
                var hs = new double[sGate!.Length];
                for (int r = 0; r < hs.Length; r++)
                {
                    double g = Dot(sGate[r], xn), u = Dot(sUp![r], xn);
                    hs[r] = g / (1 + Math.Exp(-g)) * u;
                }

                for (int r = 0; r < hidden; r++)
                {
                    acc[r] += gs * Dot(sDown![r], hs);
                }
            }

            for (int i = 0; i < hidden; i++)
            {
                x[t][i] += acc[i];
            }
        }
    }

    private static void HeadNormRope(double[] v, int off, int hd, double[]? norm, double eps, int pos, double theta, int nRot, bool neox)
    {
        if (norm is not null)
        {
            double ss = 0;
            for (int i = 0; i < hd; i++)
            {
                ss += v[off + i] * v[off + i];
            }

            double scale = 1 / Math.Sqrt((ss / hd) + eps);
            for (int i = 0; i < hd; i++)
            {
                v[off + i] *= scale * norm[i];
            }
        }

        int half = nRot / 2;
        for (int i = 0; i < half; i++)
        {
            double ang = pos * Math.Pow(theta, -2.0 * i / nRot);
            int a = neox ? off + i : off + (2 * i), b = neox ? off + i + half : off + (2 * i) + 1;
            double x0 = v[a], x1 = v[b];
            v[a] = (x0 * Math.Cos(ang)) - (x1 * Math.Sin(ang));
            v[b] = (x0 * Math.Sin(ang)) + (x1 * Math.Cos(ang));
        }
    }

    internal static double[] RmsNorm(double[] x, double[] w, double eps)
    {
        double ss = x.Sum(v => v * v) / x.Length;
        double s = 1 / Math.Sqrt(ss + eps);
        return x.Select((v, i) => v * s * w[i]).ToArray();
    }

    /// <summary>y + bias when the file has the (optional) bias tensor.</summary>
    private double[] Biased(double[] y, string bias)
    {
        if (_f.FindTensor(bias) is not null)
        {
            var b = V(bias);
            for (int i = 0; i < y.Length; i++)
            {
                y[i] += b[i];
            }
        }

        return y;
    }

    internal static double[] MatVec(double[][] w, double[] x) => w.Select(row => Dot(row, x)).ToArray();

    internal static double Dot(double[] a, double[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++)
        {
            s += a[i] * b[i];
        }

        return s;
    }
}
