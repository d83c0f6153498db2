using MoeLab.Engine.Kernels;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Experts;

/// <summary>The three matrices of one routed expert: down(silu(gate·x) * (up·x)).</summary>
public readonly struct ExpertWeights(WeightMatrix gate, WeightMatrix up, WeightMatrix down)
{
    public WeightMatrix Gate { get; } = gate;

    public WeightMatrix Up { get; } = up;

    public WeightMatrix Down { get; } = down;
}

/// <summary>
/// Where the model's MoE blocks get routed experts from: all resident (the in-RAM baseline) or streamed from SSD
/// under a RAM budget. Per layer per token the model calls <see cref="Request"/> once with the routed experts (so a
/// streaming source can issue every read at once and overlap them with compute), then <see cref="Acquire"/> and
/// <see cref="Release"/> for each expert in turn.
/// </summary>
public interface IExpertSource
{
    /// <summary>
    /// The experts a layer needs now for one token (after any routing policy), with the hidden state the router saw
    /// (so a streaming source can hand the same observation to its prefetcher).
    /// </summary>
    void Request(in RoutingObservation observed);

    /// <summary>
    /// Which of a layer's requested experts to compute next: the index in <paramref name="experts"/> of one not yet
    /// <paramref name="done"/> whose weights are in RAM now, else blocks until one is. Lets the model compute cached
    /// experts while the misses are still being read. An all-resident source answers in routing order.
    /// </summary>
    int NextReady(int layer, ReadOnlySpan<int> experts, ReadOnlySpan<bool> done) => done.IndexOf(false);

    /// <summary>
    /// Every requested expert not yet <paramref name="done"/> whose weights are in RAM now, marked in
    /// <paramref name="ready"/> (cleared first); blocks until there is at least one. Returns how many. Lets the model
    /// compute whatever has landed in one dispatch per projection instead of one expert at a time. The default
    /// answers <see cref="NextReady"/>'s single expert.
    /// </summary>
    int ReadyExperts(int layer, ReadOnlySpan<int> experts, ReadOnlySpan<bool> done, Span<bool> ready)
    {
        ready.Clear();
        ready[NextReady(layer, experts, done)] = true;
        return 1;
    }

    /// <summary>
    /// Whether every expert is in RAM at all times, so <see cref="Acquire"/> never waits: the model may then acquire
    /// a layer's experts together and compute them in one dispatch per projection instead of one expert at a time.
    /// </summary>
    bool AlwaysReady => false;

    /// <summary>Blocks until the expert's weights are in RAM and returns them; valid until <see cref="Release"/>.</summary>
    ExpertWeights Acquire(int layer, int expert);

    void Release(int layer, int expert);

    /// <summary>The token the following requests belong to (numbers telemetry events).</summary>
    void BeginToken(int token)
    {
    }

    /// <summary>Cumulative counters; snapshot per token and subtract for deltas.</summary>
    ExpertSourceCounters Counters => default;

    /// <summary>The demand counters split by layer (null: this source does not count per layer).</summary>
    ExpertLayerCounters? LayerCounters => null;

    /// <summary>Where every served expert is reported (null: nowhere).</summary>
    IExpertEventSink? EventSink
    {
        get => null;
        set { }
    }
}
