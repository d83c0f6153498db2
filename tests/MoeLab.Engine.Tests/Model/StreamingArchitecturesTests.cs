using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Model;
using MoeLab.Engine.Tests.Experts;

namespace MoeLab.Engine.Tests.Model;

/// <summary>
/// Routed experts of Qwen3.5 and Mixtral stream through the same ExpertStore and StreamingExpertSource as qwen3moe:
/// under a budget far below the experts' size the logits are bit-identical to the all-resident engine (the shared
/// expert stays resident), and the bytes read are exactly misses × expert size.
/// </summary>
public sealed class StreamingArchitecturesTests : IDisposable
{
    private static readonly int[] Tokens = [1, 17, 250, 3, 99, 42, 5, 311, 7, 200, 64, 128];

    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-stream-arch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("tiny-qwen35moe", IoMode.Buffered)]
    [InlineData("tiny-qwen35moe", IoMode.Direct)]
    [InlineData("tiny-mixtral", IoMode.Buffered)]
    public void Streaming_under_a_small_budget_gives_the_resident_logits(string preset, IoMode mode)
    {
        string path = Path.Combine(_dir, $"{preset}.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, null, GgmlType.F32, Seed: 5), path);
        float[][] resident;
        using (var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 32 }))
        {
            resident = Tokens.Select(t => m.Forward(t).ToArray()).ToArray();
        }

        StreamingExpertSource? source = null;
        ExpertStore? store = null;
        try
        {
            using var streamed = MoeModel.Load(path, new ModelOptions
            {
                Threads = 2,
                MaxContext = 32,
                ExpertSource = layout =>
                {
                    store = new ExpertStore(layout, mode);
                    int topK = ModelPreset.Find(preset)!.ExpertsUsed;
                    var options = new StreamingOptions { BudgetBytes = (topK + 2) * store.BufferBytes, WorkingBuffers = topK };
                    source = new StreamingExpertSource(store, options, new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), layout.Layers, layout.ExpertsPerLayer), new DemandFirstFifo(2));
                    return source;
                },
            });
            for (int t = 0; t < Tokens.Length; t++)
            {
                Assert.Equal(resident[t], streamed.Forward(Tokens[t]).ToArray());
            }

            var c = source!.Counters;
            long expertBytes = streamed.Experts[0, 0].Bytes;
            Assert.True(c.Misses > streamed.Experts.Layers * 8, $"only {c.Misses} misses: the budget does not force streaming");
            Assert.Equal(c.Misses * expertBytes, c.BytesRead);
            Assert.True(streamed.Experts.TotalBytes > 3 * source.SlabBytes, "the experts should exceed the budget several times");
        }
        finally
        {
            source?.Dispose();
            store?.Dispose();
        }
    }
}
