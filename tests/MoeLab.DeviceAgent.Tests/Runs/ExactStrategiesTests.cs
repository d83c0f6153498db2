using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;
using MoeLab.Strategies;

namespace MoeLab.DeviceAgent.Tests.Runs;

/// <summary>
/// Exact strategies change when an expert is read, never what is computed: every registered cache policy and
/// prefetcher, both I/O modes and the I/O scheduler's knobs, streaming under a budget far below the experts' size,
/// give logits bit-identical to the all-resident model on the same tokens. The catalog is enumerated, so a new cache
/// policy or prefetcher is covered without touching this test.
/// </summary>
public sealed class ExactStrategiesTests : IDisposable
{
    private static readonly int[] Tokens = [1, 17, 250, 3, 99, 42, 5, 311, 7, 200, 64, 128, 9, 77, 31, 2, 250, 17, 1, 300];

    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-exact-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, string, string, string> Configurations()
    {
        var data = new TheoryData<string, string, string, string>();
        foreach (var d in StrategyCatalog.All.Where(d => d.Kind == StrategyKind.Cache))
        {
            data.Add(d.Name, "none", "fifo", "buffered");
        }

        foreach (var d in StrategyCatalog.All.Where(d => d.Kind == StrategyKind.Prefetch && d.Name != "none"))
        {
            data.Add("lru", d.Name, "fifo", "buffered");
        }

        data.Add("lru:admission=second-hit", "none", "fifo", "buffered");
        data.Add("lru:admission=bypass", "next-gate", "fifo", "buffered");
        data.Add("lru", "next-gate", "fifo:demand_first=false,queue_depth=1,cancel_stale=false", "buffered");
        data.Add("lru", "repeat-last", "fifo:queue_depth=16", "direct");
        data.Add("arc", "next-gate", "fifo", "direct");
        data.Add("lru", "none", "fifo:queue_depth=4", "direct:read_chunk=4096"); // experts read in page-sized pieces
        data.Add("layered-lru", "next-gate", "fifo", "direct:read_chunk=4096");
        data.Add("lru", "none", "fifo:queue_depth=8", "direct:engine=aio"); // Linux native AIO readers
        data.Add("arc", "next-gate", "fifo:queue_depth=3", "direct:engine=aio,read_chunk=4096");
        return data;
    }

    [Theory]
    [MemberData(nameof(Configurations))]
    public void Streaming_with_an_exact_strategy_gives_the_resident_logits_bit_for_bit(string cache, string prefetch, string io, string ioMode)
    {
        string path = Path.Combine(_dir, "tiny.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.Q8_0, Seed: 21), path);
        float[][] resident;
        RoutingTrace trace;
        using (var m = MoeModel.Load(path, new ModelOptions { Threads = 1, MaxContext = 64, Observer = null }))
        {
            var recorder = new RoutingTraceRecorder(m.Layers, m.ExpertsPerLayer);
            using var observed = MoeModel.Load(path, new ModelOptions { Threads = 1, MaxContext = 64, Observer = recorder });
            resident = Tokens.Select(t => m.Forward(t).ToArray()).ToArray();
            foreach (int t in Tokens) observed.Forward(t);
            trace = recorder.Build();
        }

        var probe = new LateProbe();
        ExpertStore? store = null;
        StreamingExpertSource? source = null;
        try
        {
            using var streamed = MoeModel.Load(path, new ModelOptions
            {
                Threads = 1,
                MaxContext = 64,
                ExpertSource = layout =>
                {
                    // "direct:engine=aio,read_chunk=4096": the I/O mode, the readers' engine and the ExpertStore's read chunk size.
                    string[] mode = ioMode.Split(':');
                    var knobs = (mode.Length > 1 ? mode[1].Split(',') : []).Select(k => k.Split('=')).ToDictionary(k => k[0], k => k[1]);
                    long chunk = knobs.TryGetValue("read_chunk", out string? c) ? long.Parse(c, System.Globalization.CultureInfo.InvariantCulture) : 0;
                    store = new ExpertStore(layout, IoModes.Parse(mode[0]), chunk);
                    var engine = knobs.TryGetValue("engine", out string? e) ? ReadEngines.Parse(e) : ReadEngine.Threads;
                    var options = new StreamingOptions { BudgetBytes = 6 * store.BufferBytes, WorkingBuffers = 2, ReadEngine = engine };
                    var context = new StrategyContext
                    {
                        Shape = new ModelShape(layout.Layers, layout.ExpertsPerLayer, 2, layout.MaxExpertBytes, 64),
                        Capacity = StreamingExpertSource.CacheCapacity(store, options),
                        Router = probe,
                        Profile = trace, // static-hot, layered-lru and transition:source=profile rank from it
                        Future = trace,  // belady and oracle read the true future: the same tokens, so the same routing
                    };
                    source = new StreamingExpertSource(store, options,
                        StrategyCatalog.CreateCache(StrategySpec.Parse(cache), context),
                        StrategyCatalog.CreateIo(StrategySpec.Parse(io), context),
                        StrategyCatalog.CreatePrefetcher(StrategySpec.Parse(prefetch), context));
                    return source;
                },
            });
            probe.Model = streamed;
            for (int i = 0; i < Tokens.Length; i++)
            {
                float[] logits = streamed.Forward(Tokens[i]).ToArray();
                Assert.True(resident[i].AsSpan().SequenceEqual(logits), $"{cache} / {prefetch} / {io} / {ioMode}: logits differ from the resident model at position {i}");
            }

            if (OperatingSystem.IsLinux()) Assert.Equal(ioMode.Contains("engine=aio") ? ReadEngine.Aio : ReadEngine.Threads, source!.ReadEngine);
            if (store!.ReadChunkBytes > 0)
            {
                int split = 0;
                for (int l = 0; l < store.Layout.Layers; l++)
                {
                    for (int e = 0; e < store.Layout.ExpertsPerLayer; e++) split += store.Reads(0, l, e) > 3 ? 1 : 0;
                }

                Assert.True(split > 0, "no expert was read in more than three pieces: the chunk size did not split anything");
            }

            var c = source!.Counters;
            Assert.True(c.Misses > streamed.Experts.Layers * 4, $"only {c.Misses} misses: the budget does not force streaming");
        }
        finally
        {
            source?.Dispose();
            store?.Dispose();
        }
    }

    private sealed class LateProbe : IRouterProbe
    {
        public MoeModel? Model { get; set; }

        public int Layers => 2; // tiny-qwen3moe's shape: a prefetcher sizes itself before the model exists

        public int ExpertsPerLayer => 8;

        public void RouterProbabilities(int layer, ReadOnlySpan<float> hidden, Span<float> probabilities) => Model!.RouterProbabilities(layer, hidden, probabilities);
    }
}
