using System.Diagnostics;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Model;
using MoeLab.Engine.Sampling;
using TextTokenizer = MoeLab.Engine.Tokenizer.Tokenizer;

namespace MoeLab.Engine.Generation;

/// <summary>
/// One decoded token with what it cost: its forward pass's wall time, the part spent waiting for experts, and the
/// expert source's counters for that pass (hits, misses, bytes, I/O time).
/// </summary>
public readonly record struct TokenStep(int Index, int TokenId, double WallSeconds, double StallSeconds, ExpertSourceCounters Experts)
{
    /// <summary>Time not spent waiting for experts: attention, routers, expert matvecs, sampling.</summary>
    public double ComputeSeconds => Math.Max(0, WallSeconds - StallSeconds);
}

public sealed record GenerationResult(int[] PromptTokens, int[] Generated, string Text, double PromptSeconds, double DecodeSeconds, TokenStep[] Steps)
{
    /// <summary>Decode speed: generated tokens over the time of their forward passes (as llama-bench's tg).</summary>
    public double TokensPerSecond => DecodeSeconds > 0 ? Generated.Length / DecodeSeconds : 0;

    /// <summary>The expert source's counters summed over the generated tokens (the prompt excluded).</summary>
    public ExpertSourceCounters DecodeExperts
    {
        get
        {
            var sum = default(ExpertSourceCounters);
            foreach (var s in Steps) sum += s.Experts;
            return sum;
        }
    }

    /// <summary>Summed over the generated tokens: time blocked waiting for experts.</summary>
    public double DecodeStallSeconds => Steps.Sum(s => s.StallSeconds);
}

/// <summary>
/// Prompt → tokens → decode loop. Each generated token costs one forward pass, timed on its own; the prompt is
/// evaluated first (in chunks, <see cref="MoeModel.ForwardPrompt"/>) and timed separately.
/// </summary>
public sealed class TextGenerator(MoeModel model, TextTokenizer tokenizer)
{
    public MoeModel Model { get; } = model;

    public TextTokenizer Tokenizer { get; } = tokenizer;

    /// <param name="layerTally">Sums the expert source's per-layer counters over the decode steps only (not the prompt).</param>
    public GenerationResult Generate(
        string prompt, int maxTokens, Sampler sampler, bool stopAtEndOfGeneration = true,
        Action<TokenStep, string>? onToken = null, CancellationToken cancel = default, ExpertLayerTally? layerTally = null)
    {
        int[] promptTokens = Tokenizer.Encode(prompt);
        if (promptTokens.Length == 0)
        {
            throw new ArgumentException("the prompt encodes to no tokens");
        }

        if (Model.Position + promptTokens.Length + maxTokens > Model.MaxContext)
        {
            throw new ArgumentException($"prompt ({promptTokens.Length} tokens) plus {maxTokens} generated tokens exceed the {Model.MaxContext}-token context");
        }

        long t0 = Stopwatch.GetTimestamp();
        cancel.ThrowIfCancellationRequested();
        ReadOnlySpan<float> logits = Model.ForwardPrompt(promptTokens);

        double promptSeconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        var decoder = Tokenizer.CreateDecoder();
        var generated = new List<int>(maxTokens);
        var steps = new List<TokenStep>(maxTokens);
        var text = new System.Text.StringBuilder();
        double decodeSeconds = 0;
        var source = Model.ExpertSource;
        for (int i = 0; i < maxTokens; i++)
        {
            cancel.ThrowIfCancellationRequested();
            int token = sampler.Sample(logits);
            if (stopAtEndOfGeneration && Tokenizer.IsEndOfGeneration(token))
            {
                break;
            }

            var before = source.Counters;
            layerTally?.Begin();
            logits = Model.Forward(token);
            layerTally?.End();
            var step = new TokenStep(i, token, Model.LastWallSeconds, Model.LastStallSeconds, source.Counters - before);
            decodeSeconds += step.WallSeconds;
            generated.Add(token);
            steps.Add(step);
            string piece = decoder.Append(token);
            text.Append(piece);
            onToken?.Invoke(step, piece);
        }

        text.Append(decoder.Flush());
        return new GenerationResult(promptTokens, [.. generated], text.ToString(), promptSeconds, decodeSeconds, [.. steps]);
    }
}
