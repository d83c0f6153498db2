using System.Text.Json.Nodes;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Harness.Cli;

namespace MoeLab.Harness.Tests.Cli;

/// <summary>
/// <c>moelab quality</c> takes the engine options generate takes, including the profile trace that static-hot and
/// per-expert-bits learn from; a cache policy changes no arithmetic, so its quality cost must be exactly zero.
/// </summary>
[Collection(nameof(ConsoleCollection))]
public sealed class QualityCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-quality-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_profile_trace_reaches_the_strategies_and_a_cache_policy_costs_nothing()
    {
        string model = Path.Combine(_dir, "tiny.gguf"), trace = Path.Combine(_dir, "profile.mltrace");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.Q8_0, Seed: 3), model);
        Assert.Equal(0, CommandLine.Run(["trace", "record", "--model", model, "--prompt", "hello experts", "-n", "8", "--out", trace, "--no-csv", "--threads", "1"]));

        string[] quality = ["quality", "--model", model, "--tokens", "24", "--budget", "200KiB", "--cache", "static-hot", "--threads", "1", "--json"];
        var (code, _, error) = ConsoleCapture.Run(quality);
        Assert.Equal(1, code); // static-hot without a profile trace is refused, not run as something else
        Assert.Contains("profile", error);

        (code, string output, _) = ConsoleCapture.Run([.. quality, "--profile-trace", trace]);
        Assert.Equal(0, code);
        var json = JsonNode.Parse(output.ToString().Trim().Split('\n')[^1])!;
        int positions = (int)json["positions"]!;
        Assert.True(positions > 10);
        Assert.Equal(0.0, (double)json["max_kl"]!);
        Assert.Equal(positions, (int)json["identical_logit_positions"]!);
    }
}
