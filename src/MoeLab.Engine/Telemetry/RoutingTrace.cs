using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Telemetry;

/// <summary>
/// The experts a router chose, per token and per MoE layer, token-major: step s = token * Layers + layer.
/// Produced by the engine (recording) or a trace importer; consumed by the simulator and by offline policies
/// (belady, oracle prefetch, profile-driven policies). Immutable once built.
/// </summary>
public sealed class RoutingTrace
{
    private readonly int[] _stepStart;
    private readonly int[] _experts;
    private readonly float[]? _weights;

    public RoutingTrace(int layers, int expertsPerLayer, int[] stepStart, int[] experts, float[]? weights,
        IReadOnlyDictionary<string, string>? header = null)
    {
        if (layers <= 0) throw new ArgumentOutOfRangeException(nameof(layers), layers, "a trace needs at least one layer");
        if (expertsPerLayer <= 0) throw new ArgumentOutOfRangeException(nameof(expertsPerLayer), expertsPerLayer, "a trace needs at least one expert per layer");
        if (stepStart.Length == 0 || stepStart[0] != 0 || stepStart[^1] != experts.Length)
            throw new ArgumentException("stepStart must begin at 0 and end at experts.Length", nameof(stepStart));
        if ((stepStart.Length - 1) % layers != 0)
            throw new ArgumentException($"{stepStart.Length - 1} steps is not a whole number of tokens of {layers} layers", nameof(stepStart));
        if (weights is not null && weights.Length != experts.Length)
            throw new ArgumentException("weights must parallel experts", nameof(weights));
        Layers = layers;
        ExpertsPerLayer = expertsPerLayer;
        _stepStart = stepStart;
        _experts = experts;
        _weights = weights;
        Header = header ?? new Dictionary<string, string>();
    }

    public int Layers { get; }

    public int ExpertsPerLayer { get; }

    public int Tokens => (_stepStart.Length - 1) / Layers;

    public int Steps => _stepStart.Length - 1;

    /// <summary>Total expert requests in the trace.</summary>
    public int Requests => _experts.Length;

    public bool HasWeights => _weights is not null;

    /// <summary>Free-form provenance: model, generator parameters, source file.</summary>
    public IReadOnlyDictionary<string, string> Header { get; }

    public ReadOnlySpan<int> Experts(int token, int layer)
    {
        int s = token * Layers + layer;
        return _experts.AsSpan(_stepStart[s], _stepStart[s + 1] - _stepStart[s]);
    }

    public ReadOnlySpan<float> Weights(int token, int layer)
    {
        if (_weights is null) return ReadOnlySpan<float>.Empty;
        int s = token * Layers + layer;
        return _weights.AsSpan(_stepStart[s], _stepStart[s + 1] - _stepStart[s]);
    }

    /// <summary>The whole request sequence in replay order (token-major, within a step in listed order).</summary>
    public ExpertKey[] RequestSequence(int skipTokens = 0)
    {
        int first = _stepStart[Math.Min(skipTokens, Tokens) * Layers];
        var keys = new ExpertKey[_experts.Length - first];
        for (int s = Math.Min(skipTokens, Tokens) * Layers; s < Steps; s++)
        {
            int layer = s % Layers;
            for (int i = _stepStart[s]; i < _stepStart[s + 1]; i++) keys[i - first] = new ExpertKey(layer, _experts[i]);
        }

        return keys;
    }

    /// <summary>Raw arrays, for writers that serialize the trace.</summary>
    public ReadOnlySpan<int> StepStarts => _stepStart;

    public ReadOnlySpan<int> AllExperts => _experts;

    public ReadOnlySpan<float> AllWeights => _weights;
}

/// <summary>Appends steps token-major; <see cref="Build"/> freezes them into a <see cref="RoutingTrace"/>.</summary>
public sealed class RoutingTraceBuilder(int layers, int expertsPerLayer, bool withWeights)
{
    private readonly List<int> _stepStart = [0];
    private readonly List<int> _experts = [];
    private readonly List<float> _weights = [];

    public Dictionary<string, string> Header { get; } = new();

    public int Steps => _stepStart.Count - 1;

    public void AddStep(ReadOnlySpan<int> experts, ReadOnlySpan<float> weights = default)
    {
        foreach (int e in experts)
        {
            if ((uint)e >= (uint)expertsPerLayer)
                throw new ArgumentOutOfRangeException(nameof(experts), e, $"expert id outside 0..{expertsPerLayer - 1} at step {Steps}");
            _experts.Add(e);
        }

        if (withWeights)
        {
            if (weights.Length != experts.Length) throw new ArgumentException("weights must parallel experts", nameof(weights));
            foreach (float w in weights) _weights.Add(w);
        }

        _stepStart.Add(_experts.Count);
    }

    public RoutingTrace Build() =>
        new(layers, expertsPerLayer, _stepStart.ToArray(), _experts.ToArray(), withWeights ? _weights.ToArray() : null, new Dictionary<string, string>(Header));
}
