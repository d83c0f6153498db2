using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Prefetch;

/// <summary>Predicts nothing: every expert is read when the router asks for it.</summary>
public sealed class NoPrefetch : IPrefetcher
{
    public static readonly StrategyDescriptor Descriptor = new(
        StrategyKind.Prefetch, "none", "no prefetching (demand reads only)", [], (_, _) => new NoPrefetch());

    public string Name => "none";

    public int Predict(in RoutingObservation observed, Span<ExpertKey> predictions) => 0;
}
