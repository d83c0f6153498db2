namespace MoeLab.Engine.Quality;

/// <summary>
/// The arithmetic of comparing next-token distributions: log-softmax, KL divergence, top-1. Everything is
/// accumulated in double (a float sum over a 150k vocabulary loses the small probabilities KL is made of).
/// </summary>
public static class NextTokenDistribution
{
    /// <summary>log softmax(logits) in double, max-subtracted so no exp overflows: log p_i = x_i − m − log Σ exp(x_j − m).</summary>
    public static void LogSoftmax(ReadOnlySpan<float> logits, Span<double> logProbabilities)
    {
        if (logits.Length == 0 || logProbabilities.Length != logits.Length)
        {
            throw new ArgumentException($"log-softmax needs a non-empty vocabulary and an output of the same length ({logits.Length} logits, {logProbabilities.Length} outputs)");
        }

        double max = double.NegativeInfinity;
        foreach (float x in logits)
        {
            if (float.IsNaN(x)) throw new ArgumentException("the logits contain NaN", nameof(logits));
            max = Math.Max(max, x);
        }

        if (double.IsNegativeInfinity(max)) throw new ArgumentException("every logit is -infinity", nameof(logits));
        double sum = 0;
        foreach (float x in logits) sum += Math.Exp(x - max);
        double logZ = max + Math.Log(sum);
        for (int i = 0; i < logits.Length; i++) logProbabilities[i] = logits[i] - logZ;
    }

    /// <summary>
    /// KL(P ‖ Q) = Σ p_i (log p_i − log q_i) in nats, from log-probabilities. A token P gives no mass adds nothing
    /// (0·log 0 = 0); one Q gives no mass while P does makes it infinite.
    /// </summary>
    public static double KlDivergence(ReadOnlySpan<double> logP, ReadOnlySpan<double> logQ)
    {
        if (logP.Length != logQ.Length) throw new ArgumentException($"distributions over {logP.Length} and {logQ.Length} tokens cannot be compared");
        double kl = 0;
        for (int i = 0; i < logP.Length; i++)
        {
            if (double.IsNegativeInfinity(logP[i])) continue;
            kl += Math.Exp(logP[i]) * (logP[i] - logQ[i]);
        }

        // Rounding can leave −1e-17 for identical distributions; KL is never negative.
        return Math.Max(0, kl);
    }

    /// <summary>The most likely token; ties go to the lowest id (as greedy sampling picks).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best]) best = i;
        }

        return best;
    }
}
