namespace MoeLab.Engine.Policies;

/// <summary>
/// What a policy needs to know of a model: how many MoE layers, routed experts per layer, experts chosen per token,
/// and how many bytes one routed expert (gate + up + down) occupies at its stored precision.
/// </summary>
public sealed record ModelShape(int Layers, int ExpertsPerLayer, int ExpertsPerToken, long ExpertBytes, int HiddenSize)
{
    public int ExpertCount => Layers * ExpertsPerLayer;

    public long TotalExpertBytes => ExpertBytes * ExpertCount;
}
