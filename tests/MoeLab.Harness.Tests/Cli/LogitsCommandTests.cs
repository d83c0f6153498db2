using System.Globalization;
using System.Text;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;
using MoeLab.Harness.Cli;

namespace MoeLab.Harness.Tests.Cli;

/// <summary>
/// <c>moelab logits</c> evaluates the sequence in prompt chunks; its LGTS file and router CSV must be exactly what
/// evaluating token by token gives (the layout other engines' dumps are compared against).
/// </summary>
public sealed class LogitsCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-logits-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("tiny-qwen3moe")]
    [InlineData("tiny-qwen35moe")]
    [InlineData("tiny-mixtral")]
    public void The_LGTS_file_and_router_csv_hold_the_token_by_token_results(string preset)
    {
        string model = Path.Combine(_dir, preset + ".gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, null, GgmlType.Q8_0, Seed: 5), model);
        var rng = new Random(11);
        int[] tokens = Enumerable.Range(0, MoeModel.PromptChunk + 5).Select(_ => rng.Next(ModelPreset.Find(preset)!.Vocab)).ToArray();
        string bin = Path.Combine(_dir, "l.bin"), router = Path.Combine(_dir, "r.csv");
        Assert.Equal(0, CommandLine.Run(["logits", "--model", model, "--tokens", string.Join(',', tokens), "--out", bin, "--router-out", router, "--threads", "2"]));

        var expectedRouter = new StringBuilder("position,layer,rank,expert,weight\n");
        var observer = new CsvRows(expectedRouter);
        using var m = MoeModel.Load(model, new ModelOptions { Threads = 2, MaxContext = tokens.Length, Observer = observer });
        using var r = new BinaryReader(File.OpenRead(bin));
        Assert.Equal("LGTS"u8.ToArray(), r.ReadBytes(4));
        Assert.Equal(tokens.Length, r.ReadInt32());
        Assert.Equal(m.Config.Vocab, r.ReadInt32());
        Assert.Equal(tokens, Enumerable.Range(0, tokens.Length).Select(_ => r.ReadInt32()));
        var all = new List<float>();
        foreach (int t in tokens)
        {
            var expected = m.Forward(t).ToArray();
            var actual = Enumerable.Range(0, expected.Length).Select(_ => r.ReadSingle()).ToArray();
            Assert.Equal(expected, actual);
            all.AddRange(expected);
        }

        Assert.Equal(r.BaseStream.Length, r.BaseStream.Position);
        Assert.Equal(expectedRouter.ToString(), File.ReadAllText(router));

        // --compare reads the file back against the same logits: no difference, every top-1 agreeing; one changed logit shows.
        int vocab = m.Config.Vocab;
        string same = LogitsCommand.CompareLogits(tokens, [.. all], vocab, bin);
        Assert.Contains("max |Δ| 0,", same);
        Assert.Contains($"top-1 agreement {tokens.Length}/{tokens.Length}", same);
        var shifted = all.ToArray();
        shifted[(3 * vocab) + 1] += 0.5f;
        Assert.Contains("max |Δ| 0.5,", LogitsCommand.CompareLogits(tokens, shifted, vocab, bin));
    }

    /// <summary>What the command wrote token by token before it batched: one row per routed expert, in arrival order.</summary>
    private sealed class CsvRows(StringBuilder csv) : IRoutingObserver
    {
        public void Observe(in RoutingObservation o)
        {
            for (int j = 0; j < o.Experts.Length; j++)
            {
                csv.Append(CultureInfo.InvariantCulture, $"{o.Token},{o.Layer},{j},{o.Experts[j]},{o.Weights[j].ToString("R", CultureInfo.InvariantCulture)}\n");
            }
        }
    }
}
