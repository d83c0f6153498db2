using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Model;

namespace MoeLab.Engine.Tests.Model;

/// <summary>
/// Repacking resident matrices and resident experts into the 8-row interleaved layout at load changes no logit:
/// prompt and decode logits are bit-identical to a model loaded in the file's layout.
/// </summary>
public sealed class InterleavedWeightsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-interleave-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("tiny-qwen3moe")]
    [InlineData("tiny-mixtral")]
    public void InterleavedModelGivesTheFileLayoutsLogits(string preset)
    {
        string path = Path.Combine(_dir, $"{preset}.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, null, GgmlType.Q4_0, Seed: 31), path);
        var rng = new Random(3);
        int[] prompt = Enumerable.Range(0, 11).Select(_ => rng.Next(ModelPreset.Find(preset)!.Vocab)).ToArray();

        List<float[]> Run(bool interleave, out long residentInterleaved, out long expertsInterleaved)
        {
            using var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 64, InterleaveWeights = interleave });
            residentInterleaved = m.InterleavedResidentBytes;
            expertsInterleaved = ((ResidentExpertSource)m.ExpertSource).InterleavedBytes;
            var logits = new List<float[]> { m.ForwardPrompt(prompt).ToArray() };
            for (int t = 0; t < 4; t++) logits.Add(m.Forward(prompt[t]).ToArray());
            return logits;
        }

        var plain = Run(false, out long plainResident, out long plainExperts);
        var packed = Run(true, out long packedResident, out long packedExperts);
        Assert.Equal(0, plainResident);
        Assert.Equal(0, plainExperts);
        if (KernelIsaInfo.Best >= KernelIsa.Avx2)
        {
            Assert.True(packedResident > 0, "no resident matrix was interleaved");
            Assert.True(packedExperts > 0, "no expert was interleaved");
        }

        for (int i = 0; i < plain.Count; i++) Assert.Equal(plain[i], packed[i]);
        Assert.True(plain[0].Max(Math.Abs) > 0.1, "logits carry no signal");
    }
}
