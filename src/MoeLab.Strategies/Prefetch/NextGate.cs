using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Prefetch;

/// <summary>
/// Applies the router of layer l + d to the hidden state entering layer l and prefetches its top experts
/// (Eliseev and Mazur 2023: hidden states change slowly across layers, so a later gate guesses well). Needs the
/// engine's router (<see cref="IRouterProbe"/>); predicts nothing past the last layer or without a hidden state.
/// </summary>
public sealed class NextGate : IPrefetcher
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Prefetch, "next-gate", "applies layer l+d's router to layer l's hidden state (Eliseev & Mazur 2023)",
        [
            new("distance", "int", "1", "layers ahead to predict (d)"),
            new("top", "int", "experts per token", "experts to prefetch per prediction"),
        ],
        (p, ctx) => new NextGate(
            ctx.Router ?? throw new StrategyException(p.Policy, null, "needs the engine's router (IRouterProbe); a trace replay has none: use oracle, transition or repeat-last"),
            p.Int("distance", 1, min: 1), p.Int("top", ctx.Shape.ExpertsPerToken, min: 1)));

    private readonly IRouterProbe _router;
    private readonly int _distance;
    private readonly int _top;
    private readonly float[] _probabilities;

    public NextGate(IRouterProbe router, int distance, int top)
    {
        _router = router;
        _distance = distance;
        _top = top;
        _probabilities = new float[router.ExpertsPerLayer];
    }

    public string Name => "next-gate";

    public int Predict(in RoutingObservation observed, Span<ExpertKey> predictions)
    {
        int layer = observed.Layer + _distance;
        if (layer >= _router.Layers || observed.Hidden.IsEmpty) return 0;
        _router.RouterProbabilities(layer, observed.Hidden, _probabilities);
        return TopExperts.Select<float>(_probabilities, layer, _top, float.NegativeInfinity, predictions);
    }
}
