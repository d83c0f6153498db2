namespace MoeLab.Engine.Policies;

/// <summary>Whether an expert is in RAM now; what cache-aware routing looks at.</summary>
public interface IExpertResidency
{
    bool IsResident(ExpertKey key);
}

/// <summary>
/// May change the router's choice (top-k reduction, adaptive k, cache-aware substitution). This changes the model's
/// output, so every routing policy other than the unchanged one must be reported with its quality cost.
/// </summary>
public interface IRoutingPolicy
{
    string Name { get; }

    /// <summary>
    /// <paramref name="probabilities"/> are the router's softmax over all experts of <paramref name="layer"/>;
    /// <paramref name="experts"/>/<paramref name="weights"/> hold the model's own top-k choice (weights as the
    /// architecture normalizes them), <paramref name="count"/> of them. The policy may rewrite them in place,
    /// renormalizing as it sees fit, and returns the new count (1..count for reductions). Allocation-free.
    /// </summary>
    int Route(int layer, ReadOnlySpan<float> probabilities, Span<int> experts, Span<float> weights, int count, IExpertResidency residency);
}
