using System.Runtime.InteropServices;
using MoeLab.Engine.Model;

namespace MoeLab.Engine.Quality;

/// <summary>
/// The exact model's logits at every position of a reference text (teacher-forced: position i sees the text's
/// tokens 0..i). Recorded once; then any number of strategies are compared against it without the exact model
/// loaded beside them. Holds positions × vocabulary floats.
/// </summary>
public sealed class ReferenceLogits
{
    private readonly float[] _logits; // [position * vocab + token]

    private ReferenceLogits(int[] tokens, int vocab, float[] logits, double perplexity)
    {
        Tokens = tokens;
        Vocab = vocab;
        _logits = logits;
        Perplexity = perplexity;
    }

    /// <summary>The reference text's tokens; position i predicts token i + 1.</summary>
    public IReadOnlyList<int> Tokens { get; }

    public int Positions => Tokens.Count - 1;

    public int Vocab { get; }

    /// <summary>Perplexity of the text under the exact model.</summary>
    public double Perplexity { get; }

    public ReadOnlySpan<float> At(int position) => _logits.AsSpan(position * Vocab, Vocab);

    /// <summary>
    /// Runs the exact model over <paramref name="tokens"/> from position 0 (it is reset first) and keeps its logits.
    /// The text goes in prompt chunks (each weight read once per chunk), bit-identical to token by token.
    /// </summary>
    public static ReferenceLogits Record(MoeModel exact, ReadOnlySpan<int> tokens, CancellationToken cancel = default)
    {
        int[] text = QualityEvaluator.Check(exact, tokens);
        int vocab = exact.Config.Vocab, positions = text.Length - 1;
        var logits = new float[(long)positions * vocab];
        var logP = new double[vocab];
        double nll = 0;
        exact.Reset();
        for (int offset = 0; offset < positions; offset += MoeModel.PromptChunk)
        {
            cancel.ThrowIfCancellationRequested();
            int n = Math.Min(MoeModel.PromptChunk, positions - offset);
            exact.ForwardPrompt(text.AsSpan(offset, n), logits.AsSpan(offset * vocab, n * vocab));
        }

        for (int i = 0; i < positions; i++)
        {
            NextTokenDistribution.LogSoftmax(logits.AsSpan(i * vocab, vocab), logP);
            nll -= logP[text[i + 1]];
        }

        return new ReferenceLogits(text, vocab, logits, Math.Exp(nll / positions));
    }
}

/// <summary>
/// Quality cost of a strategy: teacher-forces the reference text through the candidate model (the same file loaded
/// with the strategy under test) and compares each next-token distribution with the exact model's. The candidate goes
/// token by token as in decoding: policies that read the cache state (cache-aware routing, precision by residency)
/// would see another state in a prompt chunk, and decoding is what is measured.
/// </summary>
public static class QualityEvaluator
{
    public static QualityReport Compare(ReferenceLogits reference, MoeModel candidate, CancellationToken cancel = default)
    {
        if (candidate.Config.Vocab != reference.Vocab)
        {
            throw new ArgumentException($"the candidate model has a vocabulary of {candidate.Config.Vocab}, the reference logits {reference.Vocab}: not the same model");
        }

        int[] text = Check(candidate, [.. reference.Tokens]);
        int vocab = reference.Vocab, positions = reference.Positions;
        var logP = new double[vocab];
        var logQ = new double[vocab];
        double klSum = 0, klMax = 0, nll = 0;
        int agree = 0, identical = 0;
        candidate.Reset();
        for (int i = 0; i < positions; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var q = candidate.Forward(text[i]);
            var p = reference.At(i);
            if (MemoryMarshal.AsBytes(p).SequenceEqual(MemoryMarshal.AsBytes(q))) identical++;
            NextTokenDistribution.LogSoftmax(p, logP);
            NextTokenDistribution.LogSoftmax(q, logQ);
            double kl = NextTokenDistribution.KlDivergence(logP, logQ);
            klSum += kl;
            klMax = Math.Max(klMax, kl);
            if (NextTokenDistribution.ArgMax(p) == NextTokenDistribution.ArgMax(q)) agree++;
            nll -= logQ[text[i + 1]];
        }

        return new QualityReport
        {
            Positions = positions,
            MeanKl = klSum / positions,
            MaxKl = klMax,
            Top1Agreement = agree / (double)positions,
            Perplexity = Math.Exp(nll / positions),
            ExactPerplexity = reference.Perplexity,
            IdenticalPositions = identical,
        };
    }

    /// <summary>Exact and candidate as two loaded models (small models; large ones record the reference first).</summary>
    public static QualityReport Compare(MoeModel exact, MoeModel candidate, ReadOnlySpan<int> tokens, CancellationToken cancel = default) =>
        Compare(ReferenceLogits.Record(exact, tokens, cancel), candidate, cancel);

    internal static int[] Check(MoeModel model, ReadOnlySpan<int> tokens)
    {
        if (tokens.Length < 2)
        {
            throw new ArgumentException($"a quality reference text needs at least 2 tokens (one prediction), got {tokens.Length}");
        }

        if (tokens.Length > model.MaxContext)
        {
            throw new ArgumentException($"the reference text has {tokens.Length} tokens but the model's context holds {model.MaxContext}; shorten it or raise the context");
        }

        foreach (int t in tokens)
        {
            if ((uint)t >= (uint)model.Config.Vocab) throw new ArgumentException($"reference token {t} is outside the vocabulary of {model.Config.Vocab}");
        }

        return tokens.ToArray();
    }
}
