namespace MoeLab.Engine.Model;

/// <summary>
/// The token mixer of one layer: full softmax attention over a KV cache, or linear attention over a recurrent state
/// (Gated DeltaNet). Either way it keeps per-sequence memory between tokens that <see cref="Reset"/> clears.
/// </summary>
public interface IAttentionLayer
{
    /// <summary>Mixes the token at <paramref name="pos"/> (its normed input <paramref name="x"/>) into the layer's memory and writes the projected output.</summary>
    void Forward(ReadOnlySpan<float> x, int pos, Span<float> output);

    /// <summary>Forgets the sequence (KV cache or recurrent state).</summary>
    void Reset();
}
