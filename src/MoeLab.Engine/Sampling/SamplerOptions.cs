namespace MoeLab.Engine.Sampling;

/// <summary>
/// How the next token is chosen. Temperature 0 is greedy (argmax). TopK 0 keeps all tokens; TopP 1 keeps all.
/// </summary>
public sealed record SamplerOptions
{
    public float Temperature { get; init; } = 0.8f;
    public int TopK { get; init; } = 40;
    public float TopP { get; init; } = 0.95f;
    public ulong Seed { get; init; }

    public static SamplerOptions Greedy { get; } = new() { Temperature = 0f, TopK = 1, TopP = 1f };

    public void Validate()
    {
        if (!(Temperature >= 0f) || float.IsInfinity(Temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "temperature must be a finite number >= 0");
        }
        if (TopK < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(TopK), TopK, "top-k must be >= 0 (0 keeps all tokens)");
        }
        if (!(TopP > 0f && TopP <= 1f))
        {
            throw new ArgumentOutOfRangeException(nameof(TopP), TopP, "top-p must be in (0, 1]");
        }
    }
}
