namespace MoeLab.Engine.Policies;

/// <summary>What the engine (or a trace replay) observed when one layer's router chose its experts for one token.</summary>
public readonly ref struct RoutingObservation
{
    /// <summary>Position of the token in the sequence (0-based), as the engine or trace numbers it.</summary>
    public int Token { get; init; }

    public int Layer { get; init; }

    /// <summary>The residual stream entering this layer's MoE block (before its norm). Empty in trace replay.</summary>
    public ReadOnlySpan<float> Hidden { get; init; }

    /// <summary>The experts the router chose (after any routing policy), best first.</summary>
    public ReadOnlySpan<int> Experts { get; init; }

    /// <summary>Their weights, in the same order.</summary>
    public ReadOnlySpan<float> Weights { get; init; }
}

/// <summary>Predicts which experts will be needed soon, so their reads can start before the router asks for them.</summary>
public interface IPrefetcher
{
    string Name { get; }

    /// <summary>
    /// Called after each layer's routing. Writes the experts to read ahead (of later layers of this token or of the
    /// next token) into <paramref name="predictions"/>, most wanted first, and returns how many it wrote.
    /// Must not allocate.
    /// </summary>
    int Predict(in RoutingObservation observed, Span<ExpertKey> predictions);
}

/// <summary>
/// Lets a prefetcher run a later layer's router on the current hidden state (next-gate prediction,
/// Eliseev and Mazur 2023). The engine implements it; a trace replay has none.
/// </summary>
public interface IRouterProbe
{
    int Layers { get; }

    int ExpertsPerLayer { get; }

    /// <summary>
    /// Applies layer <paramref name="layer"/>'s FFN norm and router to <paramref name="hidden"/> (a residual-stream
    /// state) and writes the softmax probabilities over its experts. Allocation-free.
    /// </summary>
    void RouterProbabilities(int layer, ReadOnlySpan<float> hidden, Span<float> probabilities);
}
