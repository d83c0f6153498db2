using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// Weight bytes a decode step reads outside the routed experts: attention (full or Gated DeltaNet projections),
/// the shared expert, the router, dense FFN layers (interleaved models) and the output head. The token embedding
/// is one row per token and is left out. Norms, convolution kernels and biases are negligible and left out.
/// An estimate from the preset's shapes, not a count from a file: stated as such wherever it is reported.
/// </summary>
public static class DenseFootprint
{
    public static long BytesPerToken(ModelPreset p, GgmlType type)
    {
        long Params(long rows, long cols) => GgmlTypeInfo.RowBytes(type, RoundUp(cols, GgmlTypeInfo.BlockSize(type))) * rows;

        long total = 0;
        for (int layer = 0; layer < p.Layers; layer++)
        {
            bool fullAttention = p.FullAttentionInterval == 0 || (layer + 1) % p.FullAttentionInterval == 0;
            if (fullAttention)
            {
                // Qwen3.5's full-attention q projection carries an output gate of the same width (hence ×2).
                int qWidth = p.Heads * p.HeadDim * (p.FullAttentionInterval > 0 ? 2 : 1);
                total += Params(qWidth, p.Hidden) + (2 * Params((long)p.KvHeads * p.HeadDim, p.Hidden)) + Params(p.Hidden, (long)p.Heads * p.HeadDim);
            }
            else
            {
                // Gated DeltaNet: q, k (key heads), v, z (value heads) in; value heads out.
                long inWidth = (2L * p.LinearKeyHeads * p.LinearKeyHeadDim) + (2L * p.LinearValueHeads * p.LinearValueHeadDim);
                total += Params(inWidth, p.Hidden) + Params(p.Hidden, (long)p.LinearValueHeads * p.LinearValueHeadDim);
            }

            bool moe = layer % p.MoeEvery == p.MoeEvery - 1 || p.MoeEvery == 1;
            if (moe)
            {
                total += Params(p.Experts, p.Hidden); // router
                if (p.SharedFeedForward > 0) total += (2 * Params(p.SharedFeedForward, p.Hidden)) + Params(p.Hidden, p.SharedFeedForward);
            }
            else if (p.DenseFeedForward > 0)
            {
                total += (2 * Params(p.DenseFeedForward, p.Hidden)) + Params(p.Hidden, p.DenseFeedForward);
            }
        }

        return total + Params(p.Vocab, p.Hidden); // output head
    }

    private static long RoundUp(long n, int block) => (n + block - 1) / block * block;
}
