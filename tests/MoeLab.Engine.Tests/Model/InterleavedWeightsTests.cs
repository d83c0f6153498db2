using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Tests.Model;

/// <summary>
/// Repacking resident matrices and resident experts into the 8-row interleaved layout at load changes no logit:
/// Q4_0 and Q4_K are bit-identical to the file's layout, token by token and batched, with the same routing. This is
/// what lets a streamed expert (file layout) and a resident one (repacked) give the same tokens under any budget.
/// </summary>
public sealed class InterleavedWeightsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-interleave-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private sealed class RoutingLog : IRoutingObserver
    {
        public List<string> Choices { get; } = [];

        public void Observe(in RoutingObservation observed) =>
            Choices.Add($"{observed.Token}/{observed.Layer}: {string.Join(',', observed.Experts.ToArray())}");
    }

    [Theory]
    [InlineData("tiny-qwen3moe", GgmlType.Q4_0)]
    [InlineData("tiny-mixtral", GgmlType.Q4_0)]
    [InlineData("small-qwen3moe", GgmlType.Q4_K)]
    public void InterleavedModelGivesTheFileLayoutsLogits(string preset, GgmlType quant)
    {
        string path = Path.Combine(_dir, $"{preset}-{quant}.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, null, quant, Seed: 31), path);
        var rng = new Random(3);
        int[] prompt = Enumerable.Range(0, 11).Select(_ => rng.Next(ModelPreset.Find(preset)!.Vocab)).ToArray();

        (List<float[]> Logits, float[] Batched, List<string> Routing, long Resident, long Experts) Run(bool interleave)
        {
            var log = new RoutingLog();
            using var m = MoeModel.Load(path, new ModelOptions { Threads = 2, MaxContext = 64, InterleaveWeights = interleave, Observer = log });
            var logits = new List<float[]>();
            foreach (int t in prompt) logits.Add(m.Forward(t).ToArray());
            var routing = log.Choices.ToList();
            m.Reset();
            float[] batched = m.ForwardPrompt(prompt).ToArray();
            return (logits, batched, routing, m.InterleavedResidentBytes, ((ResidentExpertSource)m.ExpertSource).InterleavedBytes);
        }

        var plain = Run(false);
        var packed = Run(true);
        Assert.Equal(0, plain.Resident + plain.Experts);
        if (KernelIsaInfo.Best >= KernelIsa.Avx2)
        {
            Assert.True(packed.Resident > 0, "no resident matrix was interleaved");
            Assert.True(packed.Experts > 0, "no expert was interleaved");
        }

        Assert.True(plain.Logits[0].Max(Math.Abs) > 0.1, "logits carry no signal");
        for (int i = 0; i < prompt.Length; i++) Assert.Equal(plain.Logits[i], packed.Logits[i]);
        Assert.Equal(plain.Batched, packed.Batched);
        Assert.Equal(plain.Routing, packed.Routing);
    }
}
