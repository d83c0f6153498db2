using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.Engine.Tests.Model;

/// <summary>The F16 KV-cache option: llama.cpp's default cache rounding, opt-in, with the same decode/prompt equivalence as F32.</summary>
public sealed class KvCacheTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-kv-").FullName;
    private static readonly int[] Tokens = [5, 17, 250, 3, 99, 42, 7, 64];

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("tiny-qwen3moe")]
    [InlineData("tiny-mixtral")]
    public void F16CacheRoundsAttentionAndKeepsPromptEqualToDecode(string preset)
    {
        string path = Path.Combine(_dir, $"{preset}.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, null, GgmlType.F32, Seed: 5), path);
        float[][] Decode(KvCacheType kv)
        {
            using var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 16, KvCache = kv });
            return Tokens.Select(t => m.Forward(t).ToArray()).ToArray();
        }

        var f32 = Decode(KvCacheType.F32);
        var f16 = Decode(KvCacheType.F16);
        double max = 0;
        for (int p = 0; p < Tokens.Length; p++)
        {
            for (int v = 0; v < f32[p].Length; v++) max = Math.Max(max, Math.Abs(f32[p][v] - f16[p][v]));
        }

        // F16 rounding (2^-11 relative) of K, V, q and the attention weights: visible, but small.
        Assert.InRange(max, 1e-6, 5e-2);

        using var batched = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 16, KvCache = KvCacheType.F16 });
        var all = new float[Tokens.Length * batched.Config.Vocab];
        batched.ForwardPrompt(Tokens, all);
        for (int p = 0; p < Tokens.Length; p++)
        {
            Assert.Equal(f16[p], all.AsSpan(p * batched.Config.Vocab, batched.Config.Vocab).ToArray());
        }
    }
}
