using MoeLab.Engine.Experts;
using MoeLab.Engine.Generation;
using MoeLab.Engine.Io;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;
using MoeLab.Engine.Tokenizer;
using MoeLab.Strategies;
using TextTokenizer = MoeLab.Engine.Tokenizer.Tokenizer;

namespace MoeLab.DeviceAgent.Runs;

/// <summary>
/// The engine configuration of one run: RAM budget for routed experts (null = all resident), I/O mode, and the
/// strategy specs by registry name. The same record drives <c>moelab generate</c>, the local target and agents.
/// </summary>
public sealed record EngineSettings
{
    public long? BudgetBytes { get; init; }

    public string IoMode { get; init; } = "direct";

    public string Cache { get; init; } = "lru";

    public string Prefetch { get; init; } = "none";

    public string Routing { get; init; } = "unchanged";

    /// <summary>Precision policy spec; anything but native needs expert variant side files next to the model (see ExpertVariantFiles).</summary>
    public string Precision { get; init; } = "native";

    public string Io { get; init; } = "fifo";

    /// <summary>Largest positional read of a streamed expert (0: one read per gate/up/down slice); see ExpertStore.</summary>
    public long ReadChunkBytes { get; init; }

    /// <summary>How expert reads are kept in flight: "threads" (one per outstanding pread) or "aio" (Linux native AIO, direct mode).</summary>
    public string ReadEngine { get; init; } = "threads";

    public int Threads { get; init; }

    public int MaxContext { get; init; }

    public IRoutingObserver? Observer { get; init; }

    /// <summary>
    /// The routing this run will make, recorded from an identical earlier run: what the oracle prefetcher and belady
    /// read (upper bounds). Its first step is the first token this session evaluates.
    /// </summary>
    public MoeLab.Engine.Telemetry.RoutingTrace? Future { get; init; }

    /// <summary>A profiling trace of this model (e.g. from <c>moelab trace record</c> on other prompts): static-hot,
    /// layered-lru, per-expert-bits and transition:source=profile learn from it.</summary>
    public MoeLab.Engine.Telemetry.RoutingTrace? Profile { get; init; }
}

/// <summary>
/// A loaded model wired to its expert source and strategies: with a budget, routed experts stream from the file
/// through a <see cref="StreamingExpertSource"/> under the chosen cache, prefetch and I/O policies; without one they
/// are all resident (the in-RAM baseline).
/// </summary>
public sealed class EngineSession : IDisposable
{
    private readonly ExpertStore? _store;
    private readonly StreamingExpertSource? _streaming;

    private EngineSession(MoeModel model, ExpertStore? store, StreamingExpertSource? streaming, string ioModeLabel)
    {
        Model = model;
        _store = store;
        _streaming = streaming;
        IoModeLabel = ioModeLabel;
        Tokenizer = GgufTokenizer.Load(model.File);
        Generator = new TextGenerator(model, Tokenizer);
    }

    public MoeModel Model { get; }

    public TextTokenizer Tokenizer { get; }

    public TextGenerator Generator { get; }

    public StreamingExpertSource? Streaming => _streaming;

    /// <summary>"direct", "buffered", or "resident" (all experts in RAM: no expert I/O at all during decode).</summary>
    public string IoModeLabel { get; }

    public static EngineSession Open(string modelPath, EngineSettings s)
    {
        var probe = new LateRouterProbe();
        ExpertStore? store = null;
        StreamingExpertSource? streaming = null;
        Func<ExpertLayout, IExpertSource>? factory = null;
        StrategyContext? context = null;
        var file = MoeLab.Engine.Gguf.GgufFile.Open(modelPath);
        var config = ModelConfig.FromGguf(file);
        bool native = StrategySpec.Parse(s.Precision).Name == "native";
        if (!native && s.BudgetBytes is null)
        {
            throw new ArgumentException($"precision '{s.Precision}' needs a RAM budget: precision policies choose what the streaming expert source reads (all-resident runs compute every expert as stored)");
        }

        if (s.Profile is { } profile)
        {
            int moeLayers = ExpertTensors.Layout(file, config).Layers;
            if (profile.ExpertsPerLayer != config.Experts || profile.Layers != moeLayers)
            {
                throw new ArgumentException($"the profile trace has {profile.Layers} layers × {profile.ExpertsPerLayer} experts but {Path.GetFileName(modelPath)} has {moeLayers} MoE layers × {config.Experts} experts: record it from this model (moelab trace record)");
            }
        }

        if (s.BudgetBytes is { } budget)
        {
            factory = layout =>
            {
                // A precision policy chooses among the model's experts (variant 0) and its side files' copies.
                var variants = native ? [layout] : ExpertVariantFiles.Layouts(file, config, layout);
                if (!native && variants.Count < 2)
                {
                    throw new FileNotFoundException($"precision '{s.Precision}' needs lower-precision copies of the experts next to {modelPath} (none found like {Path.GetFileName(ExpertVariantFiles.PathFor(modelPath, MoeLab.Engine.Gguf.GgmlType.Q4_0))}); write them with `moelab model requant --model {modelPath} --type q4_0`");
                }

                store = new ExpertStore(variants, IoModes.Parse(s.IoMode), s.ReadChunkBytes);
                var options = new StreamingOptions { BudgetBytes = budget, WorkingBuffers = Math.Max(8, probe.ExpertsUsed(layout)), ReadEngine = ReadEngines.Parse(s.ReadEngine) };
                var shape = new ModelShape(layout.Layers, layout.ExpertsPerLayer, probe.ExpertsUsed(layout), layout.MaxExpertBytes, probe.Hidden);
                context = new StrategyContext
                {
                    Shape = shape,
                    Capacity = StreamingExpertSource.CacheCapacity(store, options),
                    Unit = CacheUnit.Bytes,
                    Router = probe,
                    Future = s.Future,
                    Profile = s.Profile,
                };
                var cache = StrategyCatalog.CreateCache(StrategySpec.Parse(s.Cache), context);
                var io = StrategyCatalog.CreateIo(StrategySpec.Parse(s.Io), context);
                var prefetch = StrategyCatalog.CreatePrefetcher(StrategySpec.Parse(s.Prefetch), context);
                var precision = native ? null : StrategyCatalog.CreatePrecision(StrategySpec.Parse(s.Precision), context);
                streaming = new StreamingExpertSource(store, options, cache, io, prefetch, precision);
                return streaming;
            };
        }

        // The routing policy needs the shape too, but not the source: build it against the file's own config.
        probe.Configure(config);
        var routingContext = new StrategyContext
        {
            Shape = new ModelShape(config.Layers, config.Experts, config.ExpertsUsed, 0, config.Hidden),
            Router = probe,
            Profile = s.Profile,
        };
        var routing = StrategyCatalog.CreateRouting(StrategySpec.Parse(s.Routing), routingContext);
        MoeModel model;
        try
        {
            model = MoeModel.Load(file, new ModelOptions
            {
                Threads = s.Threads,
                MaxContext = s.MaxContext,
                ExpertSource = factory,
                Routing = routing,
                Observer = s.Observer,
                // Oracle and belady follow the future trace request by request (token-major): keep the prompt token by token.
                BatchedPrompt = s.Future is null,
            });
        }
        catch
        {
            streaming?.Dispose();
            store?.Dispose();
            throw;
        }

        probe.Model = model;
        return new EngineSession(model, store, streaming, s.BudgetBytes is null ? "resident" : IoModes.Parse(s.IoMode).Name());
    }

    public void Dispose()
    {
        Model.Dispose();
        _streaming?.Dispose();
        _store?.Dispose();
    }

    /// <summary>The prefetcher is built while the model loads; this forwards its router probes to the model once it exists.</summary>
    private sealed class LateRouterProbe : IRouterProbe
    {
        private ModelConfig? _config;

        public MoeModel? Model { get; set; }

        public int Hidden => _config?.Hidden ?? 0;

        public int Layers => Model?.Layers ?? 0;

        public int ExpertsPerLayer => _config?.Experts ?? 0;

        public void Configure(ModelConfig config) => _config = config;

        public int ExpertsUsed(ExpertLayout layout) => _config?.ExpertsUsed ?? 8;

        public void RouterProbabilities(int layer, ReadOnlySpan<float> hidden, Span<float> probabilities) =>
            (Model ?? throw new InvalidOperationException("the router was probed before the model finished loading")).RouterProbabilities(layer, hidden, probabilities);
    }
}
