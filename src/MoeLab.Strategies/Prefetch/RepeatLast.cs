using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Prefetch;

/// <summary>
/// Predicts that layer l + d will choose what it chose for the previous token (routers repeat themselves from token
/// to token). Distances past the last layer wrap to the next token, whose previous token is the current one.
/// </summary>
public sealed class RepeatLast : IPrefetcher
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Prefetch, "repeat-last", "the previous token's experts at the target layer",
        [new("distance", "int", "1", "layer steps ahead to predict; layers wrap to the next token")],
        (p, ctx) => new RepeatLast(ctx.Shape.Layers, ctx.Shape.ExpertsPerToken, p.Int("distance", 1, min: 1)));

    private readonly int _layers;
    private readonly int _distance;
    private readonly int[] _last;      // [layer * width + i]
    private readonly int[] _lastCount; // per layer, -1 before the layer was seen
    private readonly int _width;

    public RepeatLast(int layers, int expertsPerToken, int distance)
    {
        _layers = layers;
        _distance = distance;
        _width = Math.Max(1, expertsPerToken) * 4; // room for routing policies that widen the choice
        _last = new int[layers * _width];
        _lastCount = new int[layers];
        Array.Fill(_lastCount, -1);
    }

    public string Name => "repeat-last";

    public int Predict(in RoutingObservation observed, Span<ExpertKey> predictions)
    {
        int layer = observed.Layer;
        int n = Math.Min(observed.Experts.Length, _width);
        observed.Experts[..n].CopyTo(_last.AsSpan(layer * _width, n));
        _lastCount[layer] = n;
        int target = (layer + _distance) % _layers;
        int count = Math.Min(Math.Max(0, _lastCount[target]), predictions.Length);
        for (int i = 0; i < count; i++) predictions[i] = new ExpertKey(target, _last[target * _width + i]);
        return count;
    }
}
