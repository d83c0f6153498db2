using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Model;
using MoeLab.Engine.Tests.Experts;

namespace MoeLab.Engine.Tests.Model;

/// <summary>
/// Batch (prompt) and incremental (KV cache) evaluation agree: a prompt evaluated in chunks by
/// <see cref="MoeModel.ForwardPrompt"/> and then decoded further gives logits bit-identical to evaluating every token
/// with <see cref="MoeModel.Forward"/> (each row meets each activation through the same kernel, and the per-token
/// arithmetic after the projections is the same code), with resident experts and streamed under a small budget,
/// where grouping a chunk's tokens by expert must also read fewer experts than token by token.
/// </summary>
public sealed class PromptBatchTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-prompt-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Synth(string preset, GgmlType quant)
    {
        string path = Path.Combine(_dir, $"{preset}-{quant}.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, null, quant, Seed: 23), path);
        return path;
    }

    /// <summary>A prompt longer than one chunk (so it spans a chunk boundary), a second prompt mid-sequence, then decoding.</summary>
    private static (int[] First, int[] Second, int[] Decode) Sequence(int vocab)
    {
        var rng = new Random(7);
        int[] Draw(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
        return (Draw(MoeModel.PromptChunk + 9), Draw(5), Draw(6));
    }

    /// <summary>Logits after the first prompt, after the second, and after each decoded token.</summary>
    private static List<float[]> Run(MoeModel m, bool batched, (int[] First, int[] Second, int[] Decode) s)
    {
        var logits = new List<float[]>();
        foreach (var prompt in new[] { s.First, s.Second })
        {
            if (batched)
            {
                logits.Add(m.ForwardPrompt(prompt).ToArray());
            }
            else
            {
                float[] last = [];
                foreach (int t in prompt) last = m.Forward(t).ToArray();
                logits.Add(last);
            }
        }

        foreach (int t in s.Decode) logits.Add(m.Forward(t).ToArray());
        Assert.Equal(s.First.Length + s.Second.Length + s.Decode.Length, m.Position);
        return logits;
    }

    [Theory]
    [InlineData("tiny-qwen3moe", GgmlType.F32)]
    [InlineData("tiny-qwen3moe", GgmlType.Q4_0)]
    [InlineData("tiny-qwen3moe", GgmlType.Q8_0)]
    [InlineData("tiny-qwen35moe", GgmlType.F32)]
    [InlineData("tiny-qwen35moe", GgmlType.Q8_0)]
    [InlineData("tiny-mixtral", GgmlType.F32)]
    [InlineData("tiny-mixtral", GgmlType.Q4_0)]
    public void Chunked_prompt_then_decoding_gives_the_token_by_token_logits(string preset, GgmlType quant)
    {
        string path = Synth(preset, quant);
        using var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 128 });
        var s = Sequence(m.Config.Vocab);
        var expected = Run(m, batched: false, s);
        m.Reset();
        var actual = Run(m, batched: true, s);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i], actual[i]);
        }

        Assert.True(expected[0].Max(Math.Abs) > 0.1, "logits carry no signal");
    }

    [Theory]
    [InlineData("tiny-qwen3moe")]
    [InlineData("tiny-qwen35moe")]
    [InlineData("tiny-mixtral")]
    public void Streamed_chunks_read_each_expert_once_per_layer_and_give_the_same_logits(string preset)
    {
        string path = Synth(preset, GgmlType.F32);
        var s = Sequence(ModelPreset.Find(preset)!.Vocab);
        var (expected, tokenByToken) = Streamed(path, preset, batched: false, s);
        var (actual, batched) = Streamed(path, preset, batched: true, s);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i], actual[i]);
        }

        // Token by token, every token of the 73-token prompt misses most of its experts under a budget of top-k + 2;
        // a chunk requests each distinct expert of a layer once (at most the 8 experts per layer of the tiny presets).
        Assert.True(batched.Misses < tokenByToken.Misses / 2, $"{preset}: {batched.Misses} expert reads batched vs {tokenByToken.Misses} token by token");
        Assert.True(batched.Hits + batched.Misses < tokenByToken.Hits + tokenByToken.Misses, "a chunk should request each expert once, not once per token");

        // With BatchedPrompt off (what future-replaying strategies need) the source sees decoding's request sequence.
        var (unbatchedLogits, unbatched) = Streamed(path, preset, batched: true, s, batchedPrompt: false);
        Assert.Equal(tokenByToken, unbatched with { IoSeconds = tokenByToken.IoSeconds, IoBusySeconds = tokenByToken.IoBusySeconds, StallSeconds = tokenByToken.StallSeconds, DemandQueueSeconds = tokenByToken.DemandQueueSeconds, IdleIssueSeconds = tokenByToken.IdleIssueSeconds, RepackSeconds = tokenByToken.RepackSeconds });
        Assert.Equal(expected[^1], unbatchedLogits[^1]);
    }

    private static (List<float[]> Logits, ExpertSourceCounters Prompt) Streamed(string path, string preset, bool batched, (int[] First, int[] Second, int[] Decode) s, bool batchedPrompt = true)
    {
        StreamingExpertSource? source = null;
        ExpertStore? store = null;
        try
        {
            using var m = MoeModel.Load(path, new ModelOptions
            {
                Threads = 2,
                MaxContext = 128,
                BatchedPrompt = batchedPrompt,
                ExpertSource = layout =>
                {
                    store = new ExpertStore(layout, IoMode.Buffered);
                    int topK = ModelPreset.Find(preset)!.ExpertsUsed;
                    var options = new StreamingOptions { BudgetBytes = (topK + 2) * store.BufferBytes, WorkingBuffers = topK };
                    source = new StreamingExpertSource(store, options, new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), layout.Layers, layout.ExpertsPerLayer), new DemandFirstFifo(2));
                    return source;
                },
            });
            if (batched)
            {
                m.ForwardPrompt(s.First);
            }
            else
            {
                foreach (int t in s.First) m.Forward(t);
            }

            var prompt = source!.Counters;
            Assert.Equal(prompt.Misses * m.Experts[0, 0].Bytes, prompt.BytesRead);
            m.Reset();
            return (Run(m, batched, s), prompt);
        }
        finally
        {
            source?.Dispose();
            store?.Dispose();
        }
    }

    /// <summary>Every row of <see cref="MoeModel.ForwardPrompt(ReadOnlySpan{int}, Span{float})"/>, across a chunk boundary and mid-sequence.</summary>
    [Theory]
    [InlineData("tiny-qwen3moe", GgmlType.F32)]
    [InlineData("tiny-qwen3moe", GgmlType.Q4_0)]
    [InlineData("tiny-qwen35moe", GgmlType.F32)]
    [InlineData("tiny-qwen35moe", GgmlType.Q8_0)]
    [InlineData("tiny-mixtral", GgmlType.F32)]
    [InlineData("tiny-mixtral", GgmlType.Q4_0)]
    public void Every_position_of_a_chunked_prompt_has_the_token_by_token_logits(string preset, GgmlType quant)
    {
        string path = Synth(preset, quant);
        using var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 128 });
        var s = Sequence(m.Config.Vocab);
        int[] text = [.. s.First, .. s.Second];
        int vocab = m.Config.Vocab;
        var expected = text.Select(t => m.Forward(t).ToArray()).ToArray();
        var next = m.Forward(s.Decode[0]).ToArray();
        m.Reset();

        var actual = new float[text.Length * vocab];
        m.ForwardPrompt(s.First, actual.AsSpan(0, s.First.Length * vocab));
        m.ForwardPrompt(s.Second, actual.AsSpan(s.First.Length * vocab));
        for (int i = 0; i < text.Length; i++)
        {
            Assert.True(expected[i].AsSpan().SequenceEqual(actual.AsSpan(i * vocab, vocab)), $"{preset} {quant}: position {i} differs");
        }

        Assert.Equal(next, m.Forward(s.Decode[0]).ToArray()); // the caches are left as token by token leaves them
        Assert.True(expected.Min(row => row.Max(Math.Abs)) > 0.1, "logits carry no signal");
        Assert.Throws<ArgumentException>(() => m.ForwardPrompt(s.Second, new float[vocab]));

        // With batching off (future-replaying strategies) every row still comes back, token by token.
        using var unbatched = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 128, BatchedPrompt = false });
        var rows = new float[text.Length * vocab];
        unbatched.ForwardPrompt(text, rows);
        Assert.Equal(actual, rows);
    }

    /// <summary>An observer that accepts layer-major order keeps the prompt batched and still sees every token's choice.</summary>
    [Theory]
    [InlineData("tiny-qwen3moe")]
    [InlineData("tiny-qwen35moe")]
    [InlineData("tiny-mixtral")]
    public void A_layer_major_observer_sees_the_token_by_token_routing_of_a_batched_prompt(string preset)
    {
        string path = Synth(preset, GgmlType.F32);
        int[] prompt = Sequence(ModelPreset.Find(preset)!.Vocab).First;
        var tokenByToken = new Decisions(acceptsLayerMajor: false);
        using (var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 128, Observer = tokenByToken }))
        {
            m.ForwardPrompt(prompt);
        }

        var batched = new Decisions(acceptsLayerMajor: true);
        using (var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 128, Observer = batched }))
        {
            m.ForwardPrompt(prompt);
        }

        // Token by token, position 0 goes through every layer first; batched, layer 0 sees every position of the chunk first.
        Assert.Equal((0, 1), (tokenByToken.Order[1].Position, tokenByToken.Order[1].Layer));
        Assert.Equal((1, 0), (batched.Order[1].Position, batched.Order[1].Layer));
        Assert.Equal(tokenByToken.Order.Count, batched.Order.Count);
        Assert.Equal(
            tokenByToken.Order.OrderBy(o => o.Position).ThenBy(o => o.Layer).Select(o => o.Choice),
            batched.Order.OrderBy(o => o.Position).ThenBy(o => o.Layer).Select(o => o.Choice));
    }

    private sealed class Decisions(bool acceptsLayerMajor) : IRoutingObserver
    {
        public List<(int Position, int Layer, string Choice)> Order { get; } = [];

        public bool AcceptsLayerMajorOrder => acceptsLayerMajor;

        public void Observe(in MoeLab.Engine.Policies.RoutingObservation o) =>
            Order.Add((o.Token, o.Layer, string.Join(' ', o.Experts.ToArray()) + " " + string.Join(' ', o.Weights.ToArray().Select(w => BitConverter.SingleToInt32Bits(w)))));
    }

    [Fact]
    public void A_prompt_chunk_allocates_nothing_after_warm_up()
    {
        string path = Synth("tiny-qwen35moe", GgmlType.Q8_0);
        using var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 128 });
        int[] prompt = Sequence(m.Config.Vocab).First;
        var all = new float[prompt.Length * m.Config.Vocab];
        m.ForwardPrompt(prompt);
        m.Reset();
        m.ForwardPrompt(prompt, all);
        m.Reset();
        long before = GC.GetAllocatedBytesForCurrentThread();
        m.ForwardPrompt(prompt);
        m.Reset();
        m.ForwardPrompt(prompt, all);
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }
}
