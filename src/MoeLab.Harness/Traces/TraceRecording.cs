using System.Globalization;
using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Generation;
using MoeLab.Engine.Sampling;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Traces;

/// <summary>What <c>moelab trace record</c> runs: a model, engine settings, prompts and how many tokens each.</summary>
public sealed record TraceRecordOptions
{
    public required string ModelPath { get; init; }

    public required EngineSettings Settings { get; init; }

    public required IReadOnlyList<string> Prompts { get; init; }

    /// <summary>Tokens generated per prompt (generation does not stop at end-of-text, so every prompt gives this many).</summary>
    public int Tokens { get; init; } = 64;

    public SamplerOptions Sampling { get; init; } = new();

    /// <summary>Also record next-gate guesses (one router matvec per layer: leave off when the run's timing matters).</summary>
    public bool NextGate { get; init; }

    /// <summary>
    /// Called after every <see cref="PauseEvery"/>-th generated token (counted over all prompts, not after the last one)
    /// with the count so far, once the streaming readers are idle: outside the engine's timed steps, so a probe taken
    /// there does not enter the run's figures (<c>calibrate --check</c> measures the disk between segments of a run).
    /// </summary>
    public Action<int>? Pause { get; init; }

    public int PauseEvery { get; init; }
}

/// <summary>One prompt's part of a recording: where its tokens sit in the trace and what the engine measured.</summary>
public sealed record RecordedPrompt(int FirstToken, int PromptTokens, GenerationResult Generation)
{
    /// <summary>Trace token index of the first generated (decode) token.</summary>
    public int FirstDecodeToken => FirstToken + PromptTokens;
}

/// <summary>A recorded engine run: the trace of every forward pass, the engine's own measurements, and its setup.</summary>
public sealed record TraceRecordingResult
{
    public required RoutingTrace Trace { get; init; }

    public RoutingTrace? NextGate { get; init; }

    public required IReadOnlyList<RecordedPrompt> Prompts { get; init; }

    public required string IoModeLabel { get; init; }

    /// <summary>Bytes the engine's cache policy may hold (null = all experts resident, no budget).</summary>
    public long? CacheCapacityBytes { get; init; }

    /// <summary>Bytes of one expert buffer and of the experts as stored (largest), for the simulator's shape.</summary>
    public long ExpertBytes { get; init; }

    /// <summary>Reads in flight the engine's I/O scheduler allows (its reader threads).</summary>
    public int QueueDepth { get; init; }

    /// <summary>The expert source's counters over the whole run (prompt tokens included), after its reads finished.</summary>
    public ExpertSourceCounters? RunCounters { get; init; }

    /// <summary>Whether token t of the trace is a generated (decode) token, not a prompt token.</summary>
    public bool IsDecode(int token)
    {
        foreach (var p in Prompts)
        {
            if (token >= p.FirstDecodeToken && token < p.FirstDecodeToken + p.Generation.Generated.Length) return true;
        }

        return false;
    }

    public IEnumerable<TokenStep> DecodeSteps => Prompts.SelectMany(p => p.Generation.Steps);

    /// <summary>The engine's own split of the generated tokens' forward passes: attention layers (norms included), and the output head.</summary>
    public double DecodeAttentionSeconds { get; init; }

    public double DecodeHeadSeconds { get; init; }
}

/// <summary>
/// Runs the engine on prompts with a <see cref="RoutingTraceRecorder"/> attached: each prompt starts a fresh
/// sequence (KV cache reset; the expert cache carries over, as in a served model) and is evaluated token by token,
/// then <see cref="TraceRecordOptions.Tokens"/> tokens are generated. The trace holds every forward pass in order,
/// prompt tokens included; its header says which tokens were generated.
/// </summary>
public static class TraceRecording
{
    public static TraceRecordingResult Record(TraceRecordOptions o, Action<string>? onText = null)
    {
        if (o.Prompts.Count == 0) throw new ArgumentException("give at least one prompt");
        var file = MoeLab.Engine.Gguf.GgufFile.Open(o.ModelPath);
        var config = MoeLab.Engine.Model.ModelConfig.FromGguf(file);
        var layout = MoeLab.Engine.Model.ExpertTensors.Layout(file, config);
        var recorder = new RoutingTraceRecorder(layout.Layers, config.Experts);
        using var session = EngineSession.Open(o.ModelPath, o.Settings with { Observer = recorder });
        if (o.NextGate)
        {
            recorder.NextGate = session.Model;
            recorder.PredictTop = config.ExpertsUsed;
        }

        var prompts = new List<RecordedPrompt>();
        int at = 0;
        double attention = 0, head = 0;
        int decoded = 0, expected = o.Prompts.Count * o.Tokens;
        foreach (string prompt in o.Prompts)
        {
            session.Model.Reset();
            var sampler = new Sampler(config.Vocab, o.Sampling);
            var g = session.Generator.Generate(prompt, o.Tokens, sampler, stopAtEndOfGeneration: false, onToken: (_, piece) =>
            {
                attention += session.Model.LastAttentionSeconds;
                head += session.Model.LastHeadSeconds;
                onText?.Invoke(piece);
                decoded++;
                if (o.Pause is not null && o.PauseEvery > 0 && decoded % o.PauseEvery == 0 && decoded < expected)
                {
                    session.Streaming?.WaitIdle();
                    o.Pause(decoded);
                }
            });
            prompts.Add(new RecordedPrompt(at, g.PromptTokens.Length, g));
            at += g.PromptTokens.Length + g.Generated.Length;
        }

        session.Streaming?.WaitIdle();
        var inv = CultureInfo.InvariantCulture;
        var h = recorder.Header;
        h["model"] = Path.GetFileName(o.ModelPath);
        h["source"] = "moelab trace record";
        h["engine.budget_bytes"] = o.Settings.BudgetBytes is { } b ? b.ToString(inv) : "all";
        h["engine.io"] = session.IoModeLabel;
        h["engine.cache"] = o.Settings.Cache;
        h["engine.prefetch"] = o.Settings.Prefetch;
        h["engine.routing"] = o.Settings.Routing;
        h["engine.io_scheduler"] = o.Settings.Io;
        // Token ranges of each prompt: "first:prompt_tokens:generated" per prompt, ';'-separated.
        h["prompts"] = string.Join(';', prompts.Select(p => string.Create(inv, $"{p.FirstToken}:{p.PromptTokens}:{p.Generation.Generated.Length}")));
        var trace = recorder.Build();
        return new TraceRecordingResult
        {
            Trace = trace,
            NextGate = recorder.BuildPredictions(),
            Prompts = prompts,
            IoModeLabel = session.IoModeLabel,
            CacheCapacityBytes = session.Streaming is { } s ? s.CacheCapacityBytes : null,
            ExpertBytes = layout.MaxExpertBytes,
            QueueDepth = session.Streaming?.QueueDepth ?? 0,
            RunCounters = session.Streaming?.Counters,
            DecodeAttentionSeconds = attention,
            DecodeHeadSeconds = head,
        };
    }
}
