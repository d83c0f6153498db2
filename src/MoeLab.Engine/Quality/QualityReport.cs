namespace MoeLab.Engine.Quality;

/// <summary>
/// What a strategy costs in output quality on one reference text, teacher-forced: at each of <see cref="Positions"/>
/// prefixes, the candidate's next-token distribution against the exact model's.
/// </summary>
public sealed record QualityReport
{
    /// <summary>Next-token predictions compared (text tokens − 1).</summary>
    public int Positions { get; init; }

    /// <summary>Mean over positions of KL(exact ‖ candidate), nats.</summary>
    public double MeanKl { get; init; }

    public double MaxKl { get; init; }

    /// <summary>Fraction of positions where both models' most likely next token is the same.</summary>
    public double Top1Agreement { get; init; }

    /// <summary>exp(mean negative log-likelihood of the text's next tokens) under the candidate.</summary>
    public double Perplexity { get; init; }

    /// <summary>The same under the exact model: the reference the candidate's perplexity is read against.</summary>
    public double ExactPerplexity { get; init; }

    /// <summary>Positions whose logits are bit-for-bit those of the exact model (all of them for an exact strategy).</summary>
    public int IdenticalPositions { get; init; }

    public bool BitIdentical => IdenticalPositions == Positions;
}
