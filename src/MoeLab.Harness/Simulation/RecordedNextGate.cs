using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// The engine's next-gate guesses, replayed: a trace replay has no hidden state to apply a router to, so the guesses
/// recorded beside the run (<c>trace record --next-gate</c>: step (t, l) = layer l's router on the hidden state entering
/// layer l − 1) are issued where the engine's <c>next-gate</c> prefetcher issued them, after layer l − 1's routing of
/// token t. Distance 1 and the model's experts per token, as the recorder guesses.
/// </summary>
public sealed class RecordedNextGate(RoutingTrace guesses) : IPrefetcher
{
    public string Name => "next-gate (recorded)";

    public int Predict(in RoutingObservation observed, Span<ExpertKey> predictions)
    {
        int layer = observed.Layer + 1;
        if (layer >= guesses.Layers || (uint)observed.Token >= (uint)guesses.Tokens) return 0;
        var ids = guesses.Experts(observed.Token, layer);
        int n = Math.Min(ids.Length, predictions.Length);
        for (int i = 0; i < n; i++) predictions[i] = new ExpertKey(layer, ids[i]);
        return n;
    }
}
