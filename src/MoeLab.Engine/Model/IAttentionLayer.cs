namespace MoeLab.Engine.Model;

/// <summary>
/// The token mixer of one layer: full softmax attention over a KV cache, or linear attention over a recurrent state
/// (Gated DeltaNet). Either way it keeps per-sequence memory between tokens that <see cref="Reset"/> clears.
/// </summary>
public interface IAttentionLayer
{
    /// <summary>Mixes the token at <paramref name="pos"/> (its normed input <paramref name="x"/>) into the layer's memory and writes the projected output.</summary>
    void Forward(ReadOnlySpan<float> x, int pos, Span<float> output);

    /// <summary>
    /// Mixes <paramref name="count"/> consecutive tokens starting at <paramref name="pos"/> (their normed inputs in
    /// <see cref="PromptBatch.Normed"/> and <see cref="PromptBatch.Input"/>) into <paramref name="output"/> (row per
    /// token), leaving the layer's memory as <paramref name="count"/> calls of <see cref="Forward"/> would. This
    /// default is those calls; layers override it to read each weight matrix once for the whole chunk.
    /// </summary>
    void ForwardBatch(PromptBatch batch, int count, int pos, Span<float> output)
    {
        int h = batch.Hidden;
        for (int i = 0; i < count; i++)
        {
            Forward(batch.Row(batch.Normed, i), pos + i, output.Slice(i * h, h));
        }
    }

    /// <summary>Forgets the sequence (KV cache or recurrent state).</summary>
    void Reset();
}
