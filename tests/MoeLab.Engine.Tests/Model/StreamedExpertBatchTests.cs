using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;
using MoeLab.Engine.Tests.Experts;

namespace MoeLab.Engine.Tests.Model;

/// <summary>
/// Streamed experts are computed in batches of whatever has landed (one dispatch per projection) and, on CPUs with an
/// interleaved kernel, repacked on arrival: the logits must stay bit-identical to the all-resident engine, which
/// computes a layer's experts in routing order's slots with the same kernels.
/// </summary>
public sealed class StreamedExpertBatchTests : IDisposable
{
    private static readonly int[] Tokens = [1, 17, 250, 3, 99, 42, 5, 311, 7, 200, 64, 128, 9, 33, 71, 2];

    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-stream-batch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(GgmlType.Q4_0, IoMode.Direct, true, true)]
    [InlineData(GgmlType.Q4_0, IoMode.Buffered, true, false)]
    [InlineData(GgmlType.Q4_0, IoMode.Direct, false, true)]
    [InlineData(GgmlType.Q8_0, IoMode.Direct, true, true)]
    public void Batched_streamed_experts_give_the_resident_logits(GgmlType quant, IoMode mode, bool interleave, bool batched)
    {
        if (mode == IoMode.Direct && DirectIoProbe.Unsupported is not null) return;
        var preset = ModelPreset.Find("tiny-qwen3moe")! with { ExpertsUsed = 4, Layers = 4 };
        string path = Path.Combine(_dir, $"{quant}.gguf");
        ModelSynthesizer.Write(new SynthOptions(preset, null, quant, Seed: 21), path);
        float[][] resident;
        using (var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 32, InterleaveWeights = interleave }))
        {
            resident = Tokens.Select(t => m.Forward(t).ToArray()).ToArray();
            Assert.Equal(MoeLab.Engine.Kernels.ComputePool.DefaultSpinIterations, m.Pool.SpinIterations);
        }

        StreamingExpertSource? source = null;
        ExpertStore? store = null;
        BatchSpy? spy = null;
        try
        {
            using var streamed = MoeModel.Load(path, new ModelOptions
            {
                Threads = 2,
                MaxContext = 32,
                InterleaveWeights = interleave,
                ExpertSource = layout =>
                {
                    store = new ExpertStore(layout, mode);
                    var options = new StreamingOptions { BudgetBytes = (4 + 20) * store.BufferBytes, WorkingBuffers = 4, Interleave = interleave };
                    source = new StreamingExpertSource(store, options, new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), layout.Layers, layout.ExpertsPerLayer), new DemandFirstFifo(4));
                    return spy = new BatchSpy(source, batched);
                },
            });
            // a source that can stall: pool workers spin briefly, leaving the CPUs to the readers
            Assert.Equal(MoeLab.Engine.Kernels.ComputePool.StreamingSpinIterations, streamed.Pool.SpinIterations);
            for (int t = 0; t < Tokens.Length; t++)
            {
                Assert.Equal(resident[t], streamed.Forward(Tokens[t]).ToArray());
            }

            var c = source!.Counters;
            Assert.True(c.Misses > streamed.Experts.Layers * 8 && c.Hits > 0, $"{c.Misses} misses, {c.Hits} hits: the budget should force streaming and leave some hits");
            Assert.Equal(c.Misses * streamed.Experts[0, 0].Bytes, c.BytesRead);
            if (batched) Assert.True(spy!.LargestBatch > 1, "no batch of more than one expert was computed");
            else Assert.Equal(0, spy!.LargestBatch);
        }
        finally
        {
            source?.Dispose();
            store?.Dispose();
        }
    }

    /// <summary>Forwards to the streaming source and records the largest ready batch; without batching it hides ReadyExperts, so the model computes one expert at a time.</summary>
    private sealed class BatchSpy(StreamingExpertSource inner, bool batched) : IExpertSource
    {
        public int LargestBatch { get; private set; }

        public void Request(in RoutingObservation observed) => inner.Request(observed);

        public int NextReady(int layer, ReadOnlySpan<int> experts, ReadOnlySpan<bool> done) => inner.NextReady(layer, experts, done);

        public int ReadyExperts(int layer, ReadOnlySpan<int> experts, ReadOnlySpan<bool> done, Span<bool> ready)
        {
            if (!batched)
            {
                ready.Clear();
                ready[inner.NextReady(layer, experts, done)] = true;
                return 1;
            }

            int n = inner.ReadyExperts(layer, experts, done, ready);
            LargestBatch = Math.Max(LargestBatch, n);
            return n;
        }

        public ExpertWeights Acquire(int layer, int expert) => inner.Acquire(layer, expert);

        public void Release(int layer, int expert) => inner.Release(layer, expert);

        public void BeginToken(int token) => inner.BeginToken(token);
    }
}
