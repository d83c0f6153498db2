using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Model;

/// <summary>A prompt chunk through Gated DeltaNet: projections batched, the recurrence stepped per token.</summary>
public sealed partial class GatedDeltaNet
{
    /// <summary>
    /// The qkv, gate, β, α and output projections read each weight matrix once for the chunk; the conv and delta-rule
    /// recurrence then step token by token exactly as <see cref="Forward"/> does, so outputs and state are bit-identical.
    /// </summary>
    public void ForwardBatch(PromptBatch batch, int count, int pos, Span<float> output)
    {
        float[] qkv = batch.Buffer(0, _channels), z = batch.Buffer(1, _z.Length);
        float[] beta = batch.Buffer(2, _vHeads), alpha = batch.Buffer(3, _vHeads);
        _pool.Multiply2(_wQkv, _wGate, batch.Input, count, qkv, _channels, z, _z.Length);
        _pool.Multiply2(_wBeta, _wAlpha, batch.Input, count, beta, _vHeads, alpha, _vHeads);
        var mixed = batch.Wide(_o.Length);
        for (int i = 0; i < count; i++)
        {
            qkv.AsSpan(i * _channels, _channels).CopyTo(_qkv);
            z.AsSpan(i * _z.Length, _z.Length).CopyTo(_z);
            beta.AsSpan(i * _vHeads, _vHeads).CopyTo(_beta);
            alpha.AsSpan(i * _vHeads, _vHeads).CopyTo(_alpha);
            Mix();
            mixed[i].Set(_o);
        }

        _pool.Multiply(_wOut, mixed, count, output, batch.Hidden);
    }
}
