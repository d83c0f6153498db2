using System.Text.Json;
using MoeLab.DeviceAgent.Api;
using MoeLab.Engine.Generation;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Engine.Quality;
using MoeLab.Engine.Sampling;

namespace MoeLab.DeviceAgent.Runs;

/// <summary>
/// Runs one resolved cell with the real engine: opens the model with the cell's budget, I/O mode and strategies,
/// then for each repetition and prompt generates warm-up tokens (discarded) and the measured tokens. The local
/// target and device agents both run cells through this class, so their results are comparable by construction.
/// </summary>
public sealed class EngineCellRunner : ICellRunner
{
    /// <summary>Extra RAM a run needs beyond weights and budget (KV cache, buffers, runtime), stated for preflight.</summary>
    public const long OverheadBytes = 256L << 20;

    public static EngineSettings Settings(RunCell cell, MoeLab.Engine.Model.IRoutingObserver? observer = null, MoeLab.Engine.Telemetry.RoutingTrace? profile = null) => new()
    {
        Profile = profile,
        BudgetBytes = cell.BudgetBytes,
        IoMode = cell.IoMode,
        Cache = cell.Cache,
        Prefetch = cell.Prefetch,
        Routing = cell.Routing,
        Precision = cell.Precision,
        Io = cell.Io,
        Threads = cell.Threads,
        MaxContext = 0,
        Observer = observer,
    };

    /// <summary>Bytes the cell needs in RAM: resident weights, the expert budget (or every expert without one), overhead.</summary>
    public static long RequiredBytes(RunCell cell, string modelPath)
    {
        var f = GgufFile.Open(modelPath);
        long resident = f.Tensors.Where(t => !ExpertTensors.IsRoutedExpert(t)).Sum(t => t.ByteSize);
        long experts = cell.BudgetBytes ?? f.Tensors.Where(ExpertTensors.IsRoutedExpert).Sum(t => t.ByteSize);
        return resident + experts + OverheadBytes;
    }

    public static string? Preflight(RunCell cell, string modelPath, long availableMemoryBytes)
    {
        if (!File.Exists(modelPath))
        {
            return $"model '{cell.Model}' not found";
        }

        long need = RequiredBytes(cell, modelPath);
        return need > availableMemoryBytes
            ? $"cell needs about {need >> 20} MiB (resident weights + {(cell.BudgetBytes is null ? "all experts" : "expert budget")} + {OverheadBytes >> 20} MiB overhead) but only {availableMemoryBytes >> 20} MiB is available"
            : null;
    }

    /// <summary>
    /// Runs the cell's timed generation, then, when the cell asks for it, its quality cost (after the timed session is
    /// closed, so the two never hold RAM at once and quality work never shows in the timings).
    /// </summary>
    public static CellResult Run(RunCell cell, string modelPath, Action<TokenEvent>? onToken, MoeLab.Engine.Model.IRoutingObserver? observer, CancellationToken cancel, MoeLab.Engine.Telemetry.RoutingTrace? profile = null)
    {
        var result = RunTimed(cell, modelPath, onToken, observer, cancel, profile);
        if (!cell.MeasureQuality)
        {
            return result;
        }

        var q = MeasureQuality(cell, modelPath, cancel, profile);
        return result with
        {
            MeanKlDivergence = q.MeanKl,
            MaxKlDivergence = q.MaxKl,
            Top1Agreement = q.Top1Agreement,
            Perplexity = q.Perplexity,
            ExactPerplexity = q.ExactPerplexity,
            QualityPositions = q.Positions,
            IdenticalLogitPositions = q.IdenticalPositions,
        };
    }

    /// <summary>
    /// The exact configuration of a cell: the same budget, cache, prefetch and I/O (exact strategies, which leave the
    /// logits bit-identical to the all-resident model) with native precision and the router's own choice.
    /// </summary>
    public static EngineSettings ExactSettings(RunCell cell, MoeLab.Engine.Telemetry.RoutingTrace? profile = null) => Settings(cell, profile: profile) with { Routing = "unchanged", Precision = "native" };

    /// <summary>
    /// Quality cost of the cell's strategies: the exact model's logits over the reference text are recorded first
    /// (its session then closed), then the text is teacher-forced through a fresh session with the cell's strategies.
    /// The cache starts cold in both, so a cache-dependent precision policy is measured from a cold start.
    /// </summary>
    public static QualityReport MeasureQuality(RunCell cell, string modelPath, CancellationToken cancel, MoeLab.Engine.Telemetry.RoutingTrace? profile = null)
    {
        ReferenceLogits reference;
        using (var exact = EngineSession.Open(modelPath, ExactSettings(cell, profile)))
        {
            int[] tokens = exact.Tokenizer.Encode(cell.QualityText ?? ReferenceText.Default);
            int n = Math.Min(tokens.Length, Math.Min(Math.Max(2, cell.QualityTokens), exact.Model.MaxContext));
            reference = ReferenceLogits.Record(exact.Model, tokens.AsSpan(0, n), cancel);
        }

        using var candidate = EngineSession.Open(modelPath, Settings(cell, profile: profile));
        return QualityEvaluator.Compare(reference, candidate.Model, cancel);
    }

    private static CellResult RunTimed(RunCell cell, string modelPath, Action<TokenEvent>? onToken, MoeLab.Engine.Model.IRoutingObserver? observer, CancellationToken cancel, MoeLab.Engine.Telemetry.RoutingTrace? profile)
    {
        using var session = EngineSession.Open(modelPath, Settings(cell, observer, profile));
        var events = new List<TokenEvent>();
        var texts = new List<string>();
        long hits = 0, misses = 0, prefetchHits = 0, bytes = 0, issued = 0, unused = 0;
        double io = 0, compute = 0, stall = 0, seconds = 0;
        int tokens = 0;
        // Per-layer split of the measured tokens' demands (warm-up and prompt passes are not counted, as in the totals).
        var layers = session.Model.ExpertSource.LayerCounters is { } lc ? new MoeLab.Engine.Experts.ExpertLayerTally(lc) : null;
        for (int rep = 0; rep < Math.Max(1, cell.Repetitions); rep++)
        {
            foreach (string prompt in cell.Prompts)
            {
                var sampler = new Sampler(session.Model.Config.Vocab, new SamplerOptions
                {
                    Temperature = (float)cell.Temperature,
                    TopK = cell.TopK,
                    TopP = (float)cell.TopP,
                    Seed = (ulong)(cell.Seed + rep),
                });
                if (cell.WarmupTokens > 0)
                {
                    session.Model.Reset();
                    session.Generator.Generate(prompt, cell.WarmupTokens, sampler, stopAtEndOfGeneration: false, cancel: cancel);
                }

                session.Model.Reset();
                int index = tokens;
                var result = session.Generator.Generate(prompt, cell.GenerateTokens, sampler, stopAtEndOfGeneration: false, (step, _) =>
                {
                    var e = new TokenEvent(rep, index++, step.TokenId, step.WallSeconds * 1e3, (int)step.Experts.Hits, (int)step.Experts.Misses,
                        (int)step.Experts.PrefetchHits, step.Experts.BytesRead, step.Experts.IoSeconds * 1e3, step.ComputeSeconds * 1e3, step.StallSeconds * 1e3);
                    events.Add(e);
                    onToken?.Invoke(e);
                }, cancel, layers);
                texts.Add(result.Text);
                foreach (var s in result.Steps)
                {
                    hits += s.Experts.Hits;
                    misses += s.Experts.Misses;
                    prefetchHits += s.Experts.PrefetchHits;
                    bytes += s.Experts.BytesRead;
                    issued += s.Experts.PrefetchIssued;
                    unused += s.Experts.PrefetchUnused;
                    io += s.Experts.IoSeconds;
                    stall += s.StallSeconds;
                    compute += s.ComputeSeconds;
                    seconds += s.WallSeconds;
                }

                tokens += result.Generated.Length;
            }
        }

        bool prefetching = cell.Prefetch != "none";
        return new CellResult
        {
            CellId = cell.CellId,
            IoMode = session.IoModeLabel,
            BudgetBytes = cell.BudgetBytes,
            Tokens = tokens,
            Seconds = seconds,
            TokensPerSecond = seconds > 0 ? tokens / seconds : 0,
            BytesRead = bytes,
            ExpertHits = hits,
            ExpertMisses = misses,
            PrefetchHits = prefetchHits,
            IoSeconds = io,
            ComputeSeconds = compute,
            StallSeconds = stall,
            PeakRssBytes = PeakRss(),
            PrefetchPrecision = prefetching && issued > 0 ? (issued - unused) / (double)issued : null,
            PrefetchRecall = prefetching && hits + misses + prefetchHits > 0 ? prefetchHits / (double)(hits + misses + prefetchHits) : null,
            ExpertsByLayer = layers is null ? [] : LayerExpertCounts.Of(layers.Hits, layers.Misses, layers.PrefetchHits),
            Texts = [.. texts],
            TokenEvents = [.. events],
            Source = "engine",
        };
    }

    /// <summary>Process peak resident set (VmHWM) where the OS reports it; the current working set elsewhere.</summary>
    public static long PeakRss() => Telemetry.ProcFiles.ReadValue("/proc/self/status", "VmHWM") * 1024 ?? Environment.WorkingSet;

    /// <summary>Memory the OS says is available for a new allocation (MemAvailable); unbounded where it does not say.</summary>
    public static long AvailableMemory() => Telemetry.ProcFiles.ReadValue("/proc/meminfo", "MemAvailable") * 1024 ?? long.MaxValue;

    string? ICellRunner.Preflight(JsonElement cell, ModelDirectory models, long availableMemoryBytes)
    {
        var c = Parse(cell);
        return Preflight(c, models.Resolve(c.Model), availableMemoryBytes);
    }

    JsonElement ICellRunner.Run(JsonElement cell, ModelDirectory models, Action<TokenEvent> onToken, CancellationToken cancel)
    {
        var c = Parse(cell);
        var result = Run(c, models.Resolve(c.Model), onToken, null, cancel);
        return JsonSerializer.SerializeToElement(result, RunCellJson.Default.CellResult);
    }

    private static RunCell Parse(JsonElement cell) =>
        cell.Deserialize(RunCellJson.Default.RunCell) ?? throw new ArgumentException("the cell document is empty");
}
