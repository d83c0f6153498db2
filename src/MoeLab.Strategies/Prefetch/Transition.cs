using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Strategies.Prefetch;

/// <summary>
/// Expert co-activation statistics: how often expert j is chosen at the next step given expert i now. With
/// <c>mode=layer</c> the next step is layer l + 1 of the same token (the last layer feeds layer 0 of the next
/// token); with <c>mode=token</c> it is layer l of the next token. Predicts the experts with the highest summed
/// counts over the experts just chosen. Counts come from a profile trace or are learned online as the run goes.
/// </summary>
public sealed class Transition : IPrefetcher
{
    public static readonly IReadOnlyList<string> Modes = ["layer", "token"];
    public static readonly IReadOnlyList<string> Sources = ["online", "profile"];

    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Prefetch, "transition", "co-activation counts between consecutive layers or tokens, online or from a profile",
        [
            new("mode", "string", "layer", "layer: predict layer l+1 of this token; token: predict layer l of the next token", Modes),
            new("source", "string", "online", "online: learn while running; profile: counts from the profile trace, fixed", Sources),
            new("top", "int", "experts per token", "experts to prefetch per prediction"),
        ],
        (p, ctx) =>
        {
            bool byToken = p.String("mode", "layer", Modes) == "token";
            bool fromProfile = p.String("source", "online", Sources) == "profile";
            var profile = fromProfile ? ctx.RequireProfile(p.Policy, "source", "profile needs a profile trace") : null;
            return new Transition(ctx.Shape.Layers, ctx.Shape.ExpertsPerLayer, byToken, p.Int("top", ctx.Shape.ExpertsPerToken, min: 1), profile);
        });

    private readonly int _layers;
    private readonly int _experts;
    private readonly bool _byToken;
    private readonly int _top;
    private readonly bool _learn;
    private readonly int[] _counts;  // [layer][from][to], layer = the source step's layer
    private readonly long[] _scores; // one target layer
    private readonly int[] _last;    // previous choices: per layer (token mode) or of the previous step (layer mode)
    private readonly int[] _lastCount;
    private readonly int _width;

    public Transition(int layers, int expertsPerLayer, bool byToken, int top, RoutingTrace? profile)
    {
        _layers = layers;
        _experts = expertsPerLayer;
        _byToken = byToken;
        _top = top;
        _counts = new int[layers * expertsPerLayer * expertsPerLayer];
        _scores = new long[expertsPerLayer];
        _width = expertsPerLayer;
        _last = new int[(byToken ? layers : 1) * _width];
        _lastCount = new int[byToken ? layers : 1];
        _learn = profile is null;
        if (profile is not null) Learn(profile);
    }

    public string Name => "transition";

    public int Predict(in RoutingObservation observed, Span<ExpertKey> predictions)
    {
        int layer = observed.Layer;
        var now = observed.Experts;
        int previousLayer = _byToken ? layer : (layer + _layers - 1) % _layers;
        int lastSlot = _byToken ? layer : 0;
        if (_learn) Count(previousLayer, _last.AsSpan(lastSlot * _width, _lastCount[lastSlot]), now);
        int n = Math.Min(now.Length, _width);
        now[..n].CopyTo(_last.AsSpan(lastSlot * _width, n));
        _lastCount[lastSlot] = n;

        int target = _byToken ? layer : (layer + 1) % _layers;
        Array.Clear(_scores);
        int block = layer * _experts * _experts;
        foreach (int from in now)
        {
            var row = _counts.AsSpan(block + from * _experts, _experts);
            for (int to = 0; to < _experts; to++) _scores[to] += row[to];
        }

        return TopExperts.Select<long>(_scores, target, _top, 0, predictions);
    }

    private void Count(int fromLayer, ReadOnlySpan<int> from, ReadOnlySpan<int> to)
    {
        int block = fromLayer * _experts * _experts;
        foreach (int i in from)
        {
            foreach (int j in to) _counts[block + i * _experts + j]++;
        }
    }

    private void Learn(RoutingTrace profile)
    {
        for (int t = 0; t < profile.Tokens; t++)
        {
            for (int l = 0; l < profile.Layers; l++)
            {
                if (_byToken)
                {
                    if (t > 0) Count(l, profile.Experts(t - 1, l), profile.Experts(t, l));
                }
                else if (l > 0) Count(l - 1, profile.Experts(t, l - 1), profile.Experts(t, l));
                else if (t > 0) Count(profile.Layers - 1, profile.Experts(t - 1, profile.Layers - 1), profile.Experts(t, 0));
            }
        }
    }
}
