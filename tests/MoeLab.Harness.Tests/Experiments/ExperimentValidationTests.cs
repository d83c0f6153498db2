using MoeLab.Harness.Experiments;

namespace MoeLab.Harness.Tests.Experiments;

public sealed class ExperimentValidationTests
{
    /// <summary>Malformed experiments: (yaml, line, column, a phrase the message must contain).</summary>
    public static TheoryData<string, string, int, int, string> Malformed => new()
    {
        { "empty file", "", 1, 1, "empty" },
        { "only a comment", "# nothing here\n", 1, 1, "empty" },
        { "not a mapping", "- a\n- b\n", 1, 1, "expected a mapping" },
        { "bad top-level key", ExperimentYaml.Minimal + "\nrepetitons: 3\n", 4, 1, "did you mean 'repetitions'" },
        { "wrong type", ExperimentYaml.Minimal + "\nrepetitions: three\n", 4, 14, "expected a whole number, found 'three'" },
        { "out of range", ExperimentYaml.Minimal + "\nrepetitions: 0\n", 4, 14, "expected a whole number in [1, 10000], found 0" },
        { "list where a number goes", ExperimentYaml.Minimal + "\ngenerate: [1, 2]\n", 4, 11, "found a list" },
        { "bad size", ExperimentYaml.Minimal + "\nmatrix:\n  budget: [256MiB, 12 parsecs]\n", 5, 20, "'12 parsecs' is not a budget" },
        { "size without unit", ExperimentYaml.Minimal + "\nmatrix:\n  budget: 4096\n", 5, 11, "fraction of the expert bytes in (0, 1]" },
        { "unknown policy", ExperimentYaml.Minimal + "\nmatrix:\n  cache: [lru, lruu2]\n", 5, 16, "unknown cache policy 'lruu2'" },
        { "unknown policy suggests", ExperimentYaml.Minimal + "\nmatrix:\n  cache: [lur]\n", 5, 11, "did you mean 'lru'" },
        { "bad parameter", ExperimentYaml.Minimal + "\nmatrix:\n  cache:\n    - { name: lru, capacity_bias: 2 }\n", 6, 20, "has no parameter 'capacity_bias'" },
        { "bad parameter, CLI form", ExperimentYaml.Minimal + "\nmatrix:\n  cache: [\"lru:ways=4\"]\n", 5, 11, "has no parameter 'ways'" },
        { "bad axis", ExperimentYaml.Minimal + "\nmatrix:\n  cahce: [lru]\n", 5, 3, "did you mean 'cache'" },
        { "bad io mode", ExperimentYaml.Minimal + "\nmatrix:\n  io_mode: [drect]\n", 5, 13, "did you mean 'direct'" },
        { "bad indentation", "model:\n  synth:\n    preset: tiny\n   target: local\n", 4, 4, "YAML syntax" },
        { "tab indentation", "model:\n\tpath: x.gguf\n", 2, 1, "YAML syntax" },
        { "duplicate key", ExperimentYaml.Minimal + "\ntarget: local\n", 4, 1, "duplicate key" },
        { "unclosed bracket", "model: x\ntarget: local\nprompts: [\"a\"\n", 4, 1, "YAML syntax" },
        { "unknown target", ExperimentYaml.Minimal.Replace("target: local", "target: locl"), 2, 9, "did you mean 'local'" },
        { "missing model", "target: local\nprompts: [a]\n", 1, 1, "missing key 'model'" },
        { "missing prompts", "model: { synth: { preset: tiny-qwen3moe } }\ntarget: local\n", 1, 1, "missing key 'prompts'" },
        { "missing prompt file", ExperimentYaml.Minimal.Replace("prompts: [\"Once upon a time\"]", "prompts: { file: no-such-prompts-9f2.txt }"), 3, 18, "does not exist" },
        { "bad quant", ExperimentYaml.Minimal.Replace("preset: tiny-qwen3moe", "preset: tiny-qwen3moe, quant: q4_9"), 1, 49, "did you mean 'q4_0'" },
        { "exclusion naming nothing", ExperimentYaml.Minimal + "\nmatrix:\n  cache: [lru]\n  budget: [1MiB, 2MiB]\nexclude:\n  - { budget: 3MiB }\n", 8, 15, "which the matrix does not have" },
        { "baseline not in matrix", ExperimentYaml.Minimal + "\nmatrix:\n  budget: [1MiB, 2MiB]\nbaseline: { budget: 4MiB }\n", 6, 21, "not in the matrix" },
        { "baseline ambiguous", ExperimentYaml.Minimal + "\nmatrix:\n  budget: [1MiB, 2MiB]\n  io_mode: [direct, buffered]\nbaseline: { budget: 1MiB }\n", 7, 11, "selects 2 cells" },
        { "sim target without a trace", ExperimentYaml.Minimal.Replace("target: local", "target: sim:iphone-17-pro"), 2, 9, "replays a routing trace" },
        { "bad experiment name", "name: a/b\n" + ExperimentYaml.Minimal, 1, 7, "directory name" },
        { "two documents", ExperimentYaml.Minimal + "\n---\nname: x\n", 5, 1, "more than one YAML document" },
        { "strategy list item is a list", ExperimentYaml.Minimal + "\nmatrix:\n  prefetch: [[none]]\n", 5, 14, "wrong type" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void MalformedExperimentsGetPositionedErrorsNotStackTraces(string kind, string yaml, int line, int column, string phrase)
    {
        var errors = ExperimentYaml.Errors(yaml, "bad.yaml");
        Assert.True(errors.Count > 0, $"{kind}: expected an error");
        var match = errors.FirstOrDefault(e => e.ToString().Contains(phrase, StringComparison.Ordinal));
        Assert.True(match is not null, $"{kind}: no error contains \"{phrase}\"; got:\n{string.Join("\n", errors)}");
        Assert.Equal(("bad.yaml", line, column), (match.At.File, match.At.Line, match.At.Column));
        Assert.DoesNotContain(errors, e => e.Message.Contains("   at ", StringComparison.Ordinal));
    }

    [Fact]
    public void EveryErrorInTheFileIsReportedAtOnce()
    {
        var errors = ExperimentYaml.Errors(ExperimentYaml.Minimal + "\nrepetitions: x\nwarmup: -1\nmatrix:\n  cache: [nope]\n");
        Assert.True(errors.Count >= 3, string.Join("\n", errors));
    }

    [Fact]
    public void AValidExperimentResolvesEverything()
    {
        var e = ExperimentYaml.Parse("""
            name: sizes
            model: { synth: { preset: tiny-qwen3moe, layers: 2, quant: Q4_0 } }
            target: local
            prompts: { inline: [a, b] }
            generate: 16
            warmup: 2
            repetitions: 5
            seed: 7
            sampling: { temperature: 0.7, top_k: 40, top_p: 0.9 }
            matrix:
              cache: [lru]
              budget: [1MiB, 0.5, 25%, all]
              io_mode: [direct, buffered]
            baseline: { budget: all, io_mode: direct }
            """);
        Assert.Equal("sizes", e.Name);
        Assert.Equal("synth:tiny-qwen3moe:layers=2,quant=q4_0", e.Model.ToString());
        Assert.Equal(["a", "b"], e.Prompts);
        Assert.Equal((16, 2, 5, 7L), (e.Generate, e.Warmup, e.Repetitions, e.Seed));
        Assert.Equal(["1MiB", "50%", "25%", "all"], e.Axes.Single(a => a.Name == Axes.Budget).Values.Select(v => v.Text));
        Assert.Equal(["none"], e.Axes.Single(a => a.Name == Axes.Prefetch).Values.Select(v => v.Text));
        Assert.Equal(64, e.SourceSha256.Length);
    }

    [Fact]
    public void DatasetPromptsTakeLinesAfterSkip()
    {
        using var dir = new TempDirectory("moelab-prompts");
        File.WriteAllLines(Path.Combine(dir.Path, "data.txt"), ["first", "", "second", "third", "fourth"]);
        string yaml = ExperimentYaml.Minimal.Replace("prompts: [\"Once upon a time\"]", "prompts: { dataset: data.txt, skip: 1, lines: 2 }");
        var e = ExperimentReader.Parse("exp.yaml", System.Text.Encoding.UTF8.GetBytes(yaml), dir.Path);
        Assert.Equal(["second", "third"], e.Prompts);
    }

    [Theory]
    [InlineData("256MiB", 256L << 20)]
    [InlineData("1.5GiB", 3L << 29)]
    [InlineData("512MB", 512_000_000L)]
    [InlineData("4096B", 4096L)]
    public void ByteSizesParse(string text, long bytes)
    {
        Assert.True(ByteSize.TryParse(text, out long b));
        Assert.Equal(bytes, b);
        Assert.Equal(bytes, ByteSize.TryParse(ByteSize.Format(bytes), out long again) ? again : -1);
    }

    [Fact]
    public void ModelRefRoundTripsThroughRunCellText()
    {
        var m = ModelRef.Synth("tiny-qwen3moe", 2, "q4_0");
        Assert.Equal(m, ModelRef.Parse(m.ToString()));
        Assert.Equal(ModelRef.OfPath("/x/y.gguf"), ModelRef.Parse("/x/y.gguf"));
        Assert.Throws<FormatException>(() => ModelRef.Parse("synth:tiny:layers=zero"));
    }
}
