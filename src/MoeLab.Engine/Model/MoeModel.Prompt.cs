using System.Diagnostics;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Model;

/// <summary>Prompt processing: a whole chunk of tokens per pass instead of one.</summary>
public sealed partial class MoeModel
{
    /// <summary>Tokens evaluated together by <see cref="ForwardPrompt"/>; longer prompts go in chunks of this many.</summary>
    public const int PromptChunk = 64;

    private readonly bool _batchedPrompt;
    private PromptBatch? _batch;

    /// <summary>
    /// Evaluates <paramref name="tokens"/> at the next positions and returns the last one's logits (valid until the
    /// next call), leaving the model exactly as that many <see cref="Forward"/> calls would: KV caches, Gated
    /// DeltaNet conv and recurrent state, position; the logits are bit-identical too. Each chunk of up to
    /// <see cref="PromptChunk"/> tokens reads every weight matrix once, and fetches each routed expert from the
    /// expert source once per layer for all the tokens that chose it. With a routing observer attached the tokens go
    /// one at a time, so the observer keeps seeing decisions token by token (trace recording relies on that order),
    /// unless it <see cref="IRoutingObserver.AcceptsLayerMajorOrder"/>; likewise when
    /// <see cref="ModelOptions.BatchedPrompt"/> is off.
    /// </summary>
    public ReadOnlySpan<float> ForwardPrompt(ReadOnlySpan<int> tokens)
    {
        Evaluate(tokens, []);
        return _logits;
    }

    /// <summary>
    /// <see cref="ForwardPrompt(ReadOnlySpan{int})"/> keeping every position's logits: row i of
    /// <paramref name="logits"/> (tokens × <see cref="ModelConfig.Vocab"/>, row-major) is bit-identical to what
    /// <see cref="Forward"/> of tokens[i] returns in sequence. Each chunk multiplies the output head once for all its
    /// tokens, as it does every other weight matrix.
    /// </summary>
    public void ForwardPrompt(ReadOnlySpan<int> tokens, Span<float> logits)
    {
        int vocab = Config.Vocab;
        if (logits.Length != (long)tokens.Length * vocab)
        {
            throw new ArgumentException($"{tokens.Length} tokens need {(long)tokens.Length * vocab} logits ({vocab} each), the span holds {logits.Length}", nameof(logits));
        }

        Evaluate(tokens, logits);
    }

    /// <summary>The prompt path; <paramref name="all"/> receives every position's logits, or is empty for the last only (in _logits).</summary>
    private void Evaluate(ReadOnlySpan<int> tokens, Span<float> all)
    {
        if (tokens.IsEmpty)
        {
            throw new ArgumentException("the prompt has no tokens", nameof(tokens));
        }

        foreach (int token in tokens)
        {
            if ((uint)token >= (uint)Config.Vocab)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), token, $"token id outside the vocabulary of {Config.Vocab}");
            }
        }

        if (Position + tokens.Length > MaxContext)
        {
            throw new InvalidOperationException($"context full: {tokens.Length} prompt tokens at position {Position} exceed the {MaxContext}-token KV cache");
        }

        long start = Stopwatch.GetTimestamp();
        double stall = 0;
        int vocab = Config.Vocab;
        if (!_batchedPrompt || _runtime.Observer is { AcceptsLayerMajorOrder: false })
        {
            for (int i = 0; i < tokens.Length; i++)
            {
                var logits = Forward(tokens[i]);
                if (!all.IsEmpty)
                {
                    logits.CopyTo(all.Slice(i * vocab, vocab));
                }

                stall += LastStallSeconds;
            }
        }
        else
        {
            _batch ??= new PromptBatch(PromptChunk, Config.Hidden);
            for (int offset = 0; offset < tokens.Length; offset += PromptChunk)
            {
                int n = Math.Min(PromptChunk, tokens.Length - offset);
                stall += ForwardChunk(tokens.Slice(offset, n), _batch, all.IsEmpty ? [] : all.Slice(offset * vocab, n * vocab));
            }
        }

        LastStallSeconds = stall;
        LastWallSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>
    /// One chunk, layer by layer for all its tokens; the logits of every token into <paramref name="logits"/>, or of
    /// its last token only (into _logits) when that is empty. Returns the expert stall.
    /// </summary>
    private double ForwardChunk(ReadOnlySpan<int> tokens, PromptBatch b, Span<float> logits)
    {
        var c = Config;
        int n = tokens.Length, pos = Position, h = c.Hidden;
        double stall = 0;
        _source.BeginToken(pos + n - 1);
        for (int i = 0; i < n; i++)
        {
            Dequantizer.DequantizeRow(_tokenEmbedding.Type, _tokenEmbedding.Row(tokens[i]), b.Row(b.Residual, i));
        }

        var x = b.Residual.AsSpan(0, n * h);
        var output = b.Output.AsSpan(0, n * h);
        for (int l = 0; l < c.Layers; l++)
        {
            Norm(b, n, _attnNorm[l]);
            _attention[l].ForwardBatch(b, n, pos, output);
            Add(x, output);

            Norm(b, n, _ffnNorm[l]);
            stall += _moe[l]!.ForwardBatch(b, n, pos, output, _runtime);
            Add(x, output);
        }

        if (logits.IsEmpty)
        {
            VectorOps.RmsNorm(b.Row(b.Residual, n - 1), _outputNorm, c.NormEpsilon, _xb);
            _finalQ.Set(_xb);
            _pool.MatVec(_output, _finalQ, _logits);
        }
        else
        {
            Norm(b, n, _outputNorm);
            _pool.Multiply(_output, b.Input, n, logits, c.Vocab);
        }

        Position = pos + n;
        return stall;
    }

    /// <summary>Row-wise RMSNorm of the residual into <see cref="PromptBatch.Normed"/>, quantized into <see cref="PromptBatch.Input"/>.</summary>
    private void Norm(PromptBatch b, int n, float[] weight)
    {
        for (int i = 0; i < n; i++)
        {
            var normed = b.Row(b.Normed, i);
            VectorOps.RmsNorm(b.Row(b.Residual, i), weight, Config.NormEpsilon, normed);
            b.Input[i].Set(normed);
        }
    }
}
