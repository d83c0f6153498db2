using System.Diagnostics;
using System.Numerics.Tensors;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Model;

/// <summary>A prompt chunk through the sparse FFN: tokens grouped by expert, each routed expert fetched once per chunk.</summary>
public sealed partial class MoeBlock
{
    /// <summary>
    /// The chunk's normed inputs are in <see cref="PromptBatch.Input"/>, its residual stream in
    /// <see cref="PromptBatch.Residual"/>; writes the block's output row per token into <paramref name="output"/>.
    /// Routing is per token as in <see cref="Forward"/>; then every distinct expert the chunk chose is requested,
    /// acquired and computed once, for all the tokens that chose it (its weights read once per chunk: from SSD once
    /// for a streaming source), in groups of top-k experts so the source's working buffers suffice. Each token's
    /// routed outputs are summed in its routing order, so outputs are bit-identical to <see cref="Forward"/>. An
    /// observer sees each token's decision at this layer, in token order (only observers that accept layer-major order
    /// are attached on this path).
    /// Returns the seconds spent waiting for experts.
    /// </summary>
    public double ForwardBatch(PromptBatch batch, int count, int pos, Span<float> output, in MoeRuntime rt)
    {
        int n = _c.Experts, top = _c.ExpertsUsed, hidden = batch.Hidden;
        float[] probs = batch.Buffer(0, n), weights = batch.Buffer(1, top);
        int[] experts = batch.Ints(0, batch.Capacity * top), used = batch.Ints(1, batch.Capacity);
        _pool.Multiply(_router, batch.Input, count, probs, n);
        for (int i = 0; i < count; i++)
        {
            var p = probs.AsSpan(i * n, n);
            var e = experts.AsSpan(i * top, top);
            var w = weights.AsSpan(i * top, top);
            TensorPrimitives.SoftMax(p, p);
            Ops.TopK(p, e);
            float sum = 0;
            for (int j = 0; j < top; j++)
            {
                w[j] = p[e[j]];
                sum += w[j];
            }

            if (_c.NormalizeTopK)
            {
                for (int j = 0; j < top; j++)
                {
                    w[j] /= sum;
                }
            }

            used[i] = rt.Routing is null ? top : rt.Routing.Route(_moeIndex, p, e, w, top, rt.Residency!);
            rt.Observer?.Observe(new RoutingObservation
            {
                Token = pos + i,
                Layer = _moeIndex,
                Hidden = batch.Row(batch.Residual, i),
                Experts = e[..used[i]],
                Weights = w[..used[i]],
            });
        }

        // Group (token, slot) pairs by expert, experts in order of first use: a counting sort.
        int[] groupOf = batch.Ints(2, n), distinct = batch.Ints(3, (batch.Capacity * top) + 1);
        int[] start = batch.Ints(4, (batch.Capacity * top) + 1), pairs = batch.Ints(5, batch.Capacity * top);
        groupOf.AsSpan(0, n).Fill(-1);
        int groups = 0;
        for (int i = 0; i < count; i++)
        {
            for (int j = 0; j < used[i]; j++)
            {
                int e = experts[(i * top) + j];
                if (groupOf[e] < 0)
                {
                    groupOf[e] = groups;
                    distinct[groups] = e;
                    start[++groups] = 0;
                }

                start[groupOf[e] + 1]++;
            }
        }

        start[0] = 0;
        for (int g = 0; g < groups; g++) // start[g + 1] = end of group g
        {
            start[g + 1] += start[g];
        }

        // Filled backwards, so each group keeps token order and start[g + 1] ends at group g's first pair.
        for (int i = count - 1; i >= 0; i--)
        {
            for (int j = used[i] - 1; j >= 0; j--)
            {
                int g = groupOf[experts[(i * top) + j]];
                pairs[--start[g + 1]] = (i * top) + j;
            }
        }

        float[] routed = batch.Buffer(4, top * hidden);
        double stall = 0;
        int last = count - 1;
        for (int g0 = 0; g0 < groups; g0 += top)
        {
            int size = Math.Min(top, groups - g0);
            var group = distinct.AsSpan(g0, size);
            rt.Source.Request(new RoutingObservation
            {
                Token = pos + last,
                Layer = _moeIndex,
                Hidden = batch.Row(batch.Residual, last),
                Experts = group,
            });
            var computed = _computed.AsSpan(0, size);
            computed.Clear();
            for (int c = 0; c < size; c++)
            {
                long t0 = Stopwatch.GetTimestamp();
                int j = rt.Source.NextReady(_moeIndex, group, computed);
                var ew = rt.Source.Acquire(_moeIndex, group[j]);
                stall += Stopwatch.GetElapsedTime(t0).TotalSeconds;
                try
                {
                    int g = g0 + j, first = start[g + 1], users = (g + 1 < groups ? start[g + 2] : TotalPairs(used, count)) - first;
                    for (int u = 0; u < users; u++)
                    {
                        batch.Gather[u] = batch.Input[pairs[first + u] / top];
                    }

                    float[] result = ExpertRows(batch, ew.Gate, ew.Up, ew.Down, batch.Gather, users);
                    for (int u = 0; u < users; u++)
                    {
                        result.AsSpan(u * hidden, hidden).CopyTo(routed.AsSpan(pairs[first + u] * hidden, hidden));
                    }
                }
                finally
                {
                    rt.Source.Release(_moeIndex, group[j]);
                }

                computed[j] = true;
            }
        }

        for (int i = 0; i < count; i++)
        {
            var o = output.Slice(i * hidden, hidden);
            o.Clear();
            for (int j = 0; j < used[i]; j++)
            {
                TensorPrimitives.MultiplyAdd(routed.AsSpan(((i * top) + j) * hidden, hidden), weights[(i * top) + j], o, o);
            }
        }

        if (_sharedGate is { } sg)
        {
            float[] scalars = batch.Buffer(6, 1);
            if (_sharedGateInput is { } gi)
            {
                _pool.Multiply(gi, batch.Input, count, scalars, 1);
            }

            float[] shared = ExpertRows(batch, sg, _sharedUp!.Value, _sharedDown!.Value, batch.Input, count);
            for (int i = 0; i < count; i++)
            {
                float scale = _sharedGateInput is null ? 1f : Ops.Sigmoid(scalars[i]);
                var o = output.Slice(i * hidden, hidden);
                TensorPrimitives.MultiplyAdd(shared.AsSpan(i * hidden, hidden), scale, o, o);
            }
        }

        return stall;
    }

    private static int TotalPairs(int[] used, int count)
    {
        int total = 0;
        for (int i = 0; i < count; i++)
        {
            total += used[i];
        }

        return total;
    }

    /// <summary>down(silu(gate·x_u) ⊙ up·x_u) for the first <paramref name="users"/> vectors of <paramref name="x"/>; row u of the returned buffer.</summary>
    private float[] ExpertRows(PromptBatch batch, in WeightMatrix gate, in WeightMatrix up, in WeightMatrix down, QuantizedVector[] x, int users)
    {
        int ff = gate.Rows, hidden = batch.Hidden;
        float[] g = batch.Buffer(2, ff), u = batch.Buffer(3, ff), result = batch.Buffer(5, hidden);
        _pool.Multiply2(gate, up, x, users, g, ff, u, ff);
        var h = batch.Wide(ff);
        for (int i = 0; i < users; i++)
        {
            var gi = g.AsSpan(i * ff, ff);
            VectorOps.SwiGlu(gi, u.AsSpan(i * ff, ff));
            h[i].Set(gi);
        }

        _pool.Multiply(down, h, users, result, hidden);
        return result;
    }
}
