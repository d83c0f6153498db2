using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Telemetry;

/// <summary>
/// Records every routing decision the engine makes (one step per token and MoE layer, in the order they happen)
/// into a <see cref="RoutingTrace"/>: the raw material of <c>moelab trace record</c> and of simulator calibration.
/// </summary>
public sealed class RoutingTraceRecorder(int layers, int expertsPerLayer) : IRoutingObserver
{
    private readonly RoutingTraceBuilder _builder = new(layers, expertsPerLayer, withWeights: true);

    public Dictionary<string, string> Header => _builder.Header;

    public int Steps => _builder.Steps;

    public void Observe(in RoutingObservation observed) => _builder.AddStep(observed.Experts, observed.Weights);

    public RoutingTrace Build() => _builder.Build();
}
