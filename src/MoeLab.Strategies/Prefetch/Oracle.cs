using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Strategies.Prefetch;

/// <summary>
/// Reads the true choice of the step d layers ahead from the future trace: the upper bound for any predictor.
/// Trace replay only. The first observation is aligned with token <c>FutureSkipTokens</c> of the trace; later
/// tokens follow by their distance from the first. <see cref="Mismatches"/> counts observations that differ from
/// the trace (then the run is not the traced one and the oracle is no oracle).
/// </summary>
public sealed class Oracle : IPrefetcher
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Prefetch, "oracle", "the true future choices from the trace (upper bound; trace replay only)",
        [new("distance", "int", "1", "layer steps ahead to predict; layers wrap to the next token")],
        (p, ctx) => new Oracle(
            ctx.Future ?? throw new StrategyException(p.Policy, null, "needs the future trace: it runs only in trace replay (moelab sim)"),
            ctx.FutureSkipTokens, p.Int("distance", 1, min: 1)));

    private readonly RoutingTrace _future;
    private readonly int _skipTokens;
    private readonly int _distance;
    private int _firstToken = -1;

    public Oracle(RoutingTrace future, int skipTokens, int distance)
    {
        _future = future;
        _skipTokens = skipTokens;
        _distance = distance;
    }

    public string Name => "oracle";

    /// <summary>Observations whose experts differ from the trace's at the aligned step.</summary>
    public long Mismatches { get; private set; }

    public int Predict(in RoutingObservation observed, Span<ExpertKey> predictions)
    {
        if (_firstToken < 0) _firstToken = observed.Token;
        long step = (long)(_skipTokens + observed.Token - _firstToken) * _future.Layers + observed.Layer;
        if (step < _future.Steps && !observed.Experts.SequenceEqual(_future.Experts((int)(step / _future.Layers), observed.Layer))) Mismatches++;
        long target = step + _distance;
        if (target >= _future.Steps) return 0;
        int layer = (int)(target % _future.Layers);
        var experts = _future.Experts((int)(target / _future.Layers), layer);
        int n = Math.Min(experts.Length, predictions.Length);
        for (int i = 0; i < n; i++) predictions[i] = new ExpertKey(layer, experts[i]);
        return n;
    }
}
