using System.Numerics.Tensors;

namespace MoeLab.Engine.Telemetry;

/// <summary>
/// Mean cosine similarity between consecutive layers' router inputs (the FFN-normed hidden state each router sees),
/// over the decode steps it watched: how little each block changes the residual stream. Trained transformers add
/// small updates to a large stream, so this is high and a later layer's router applied to an earlier layer's state
/// (next-gate prefetching) guesses well. Allocation-free; attach it to <see cref="Model.MoeModel.RouterInputs"/>.
/// </summary>
public sealed class RouterInputSimilarity(int hidden)
{
    private readonly float[] _previous = new float[hidden];
    private bool _hasPrevious;

    /// <summary>Sum of the cosines over <see cref="Pairs"/> consecutive-layer pairs.</summary>
    public double Sum { get; private set; }

    public long Pairs { get; private set; }

    /// <summary>The mean cosine; NaN before the first pair.</summary>
    public double Mean => Pairs == 0 ? double.NaN : Sum / Pairs;

    /// <summary>A new token: its first layer has no predecessor.</summary>
    public void BeginToken() => _hasPrevious = false;

    /// <summary>The next layer's router input of the current token.</summary>
    public void Add(ReadOnlySpan<float> routerInput)
    {
        if (_hasPrevious)
        {
            Sum += TensorPrimitives.CosineSimilarity(routerInput, _previous);
            Pairs++;
        }

        routerInput.CopyTo(_previous);
        _hasPrevious = true;
    }

    public void Clear()
    {
        Sum = 0;
        Pairs = 0;
        _hasPrevious = false;
    }
}
