using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Telemetry;

/// <summary>
/// Records every routing decision the engine makes (one step per token and MoE layer, in the order they happen)
/// into a <see cref="RoutingTrace"/>: the raw material of <c>moelab trace record</c> and of simulator calibration.
/// With a <see cref="NextGate"/> probe it also records what layer l+1's router would pick from the hidden state
/// entering layer l (Eliseev and Mazur 2023's next-gate guess) as a second trace of the same shape: step (t, l+1)
/// holds the guess for layer l+1, step (t, 0) is empty (nothing precedes the first layer).
/// </summary>
public sealed class RoutingTraceRecorder(int layers, int expertsPerLayer) : IRoutingObserver
{
    private readonly RoutingTraceBuilder _builder = new(layers, expertsPerLayer, withWeights: true);
    private readonly RoutingTraceBuilder _predictions = new(layers, expertsPerLayer, withWeights: true);
    private readonly float[] _probabilities = new float[expertsPerLayer];
    private readonly float[] _predictedWeights = new float[expertsPerLayer];
    private int[] _predicted = [];
    private IRouterProbe? _nextGate;

    public Dictionary<string, string> Header => _builder.Header;

    public int Steps => _builder.Steps;

    /// <summary>
    /// The router to probe for next-gate guesses (the loaded model); null records none. Set it before the first
    /// token; the guess costs one router matvec per layer, so leave it off when timing a run.
    /// </summary>
    public IRouterProbe? NextGate
    {
        get => _nextGate;
        set
        {
            if (_builder.Steps > 0) throw new InvalidOperationException("set NextGate before the first token is recorded");
            _nextGate = value;
        }
    }

    /// <summary>Experts per next-gate guess (the model's experts per token); used only with <see cref="NextGate"/>.</summary>
    public int PredictTop
    {
        get => _predicted.Length;
        set => _predicted = new int[Math.Clamp(value, 0, expertsPerLayer)];
    }

    public void Observe(in RoutingObservation observed)
    {
        _builder.AddStep(observed.Experts, observed.Weights);
        if (_nextGate is null) return;
        int layer = observed.Layer;
        if (layer == 0) _predictions.AddStep([], []);
        if (layer + 1 >= layers) return;
        if (observed.Hidden.IsEmpty) throw new InvalidOperationException($"next-gate recording needs the hidden state; layer {layer} gave none");
        _nextGate.RouterProbabilities(layer + 1, observed.Hidden, _probabilities);
        Ops.TopK(_probabilities, _predicted);
        for (int i = 0; i < _predicted.Length; i++) _predictedWeights[i] = _probabilities[_predicted[i]];
        _predictions.AddStep(_predicted, _predictedWeights.AsSpan(0, _predicted.Length));
    }

    public RoutingTrace Build() => _builder.Build();

    /// <summary>The next-gate guesses (null without a <see cref="NextGate"/> probe); header names what they are.</summary>
    public RoutingTrace? BuildPredictions()
    {
        if (_nextGate is null) return null;
        foreach (var (k, v) in _builder.Header) _predictions.Header[k] = v;
        _predictions.Header["kind"] = "next-gate predictions: step (t, l) = layer l's router applied to the hidden state entering layer l-1; layer 0 empty";
        return _predictions.Build();
    }
}
