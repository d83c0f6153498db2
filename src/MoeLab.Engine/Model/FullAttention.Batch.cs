using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Model;

/// <summary>A prompt chunk through full attention: projections batched, attention causal per token over the cache.</summary>
public sealed partial class FullAttention
{
    /// <summary>
    /// Q, K, V and output projections read each weight matrix once for the chunk; then token by token (so each sees
    /// the cache up to itself, causal) the same norms, RoPE, cache write and attention as <see cref="Forward"/>, which
    /// makes every output and the cache bit-identical to decoding the tokens one at a time.
    /// </summary>
    public void ForwardBatch(PromptBatch batch, int count, int pos, Span<float> output)
    {
        if (pos + count > _maxContext)
        {
            throw new InvalidOperationException($"context full: positions {pos}..{pos + count - 1} exceed the {_maxContext}-token KV cache");
        }

        int d = _c.KeyLength, qWidth = _wq.Rows, hidden = batch.Hidden;
        float[] q = batch.Buffer(0, qWidth), k = batch.Buffer(1, _k.Length), v = batch.Buffer(2, _v.Length);
        _pool.Multiply(_wq, batch.Input, count, q, qWidth);
        _pool.Multiply2(_wk, _wv, batch.Input, count, k, _k.Length, v, _v.Length);
        var attended = batch.Wide(_out.Length);
        for (int i = 0; i < count; i++)
        {
            var qi = q.AsSpan(i * qWidth, qWidth);
            AddBias(qi, _bq);
            if (_qGate is not null)
            {
                for (int h = 0; h < _c.Heads; h++)
                {
                    qi.Slice(2 * h * d, d).CopyTo(_q.AsSpan(h * d, d));
                    qi.Slice((2 * h * d) + d, d).CopyTo(_gate!.AsSpan(h * d, d));
                }
            }
            else
            {
                qi.CopyTo(_q);
            }

            k.AsSpan(i * _k.Length, _k.Length).CopyTo(_k);
            v.AsSpan(i * _v.Length, _v.Length).CopyTo(_v);
            AddBias(_k, _bk);
            AddBias(_v, _bv);
            Attend(pos + i);
            attended[i].Set(_out);
        }

        _pool.Multiply(_wo, attended, count, output, hidden);
        for (int i = 0; i < count; i++)
        {
            AddBias(output.Slice(i * hidden, hidden), _bo);
        }
    }
}
