namespace MoeLab.Harness.Tests.Cli;

[Collection(nameof(ConsoleCollection))]
public sealed class ModelSynthCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-synth-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("0")]
    [InlineData("-0.3")]
    [InlineData("abc")]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    public void A_bad_layer_update_scale_is_a_usage_error_naming_the_option(string value)
    {
        string path = Path.Combine(_dir, "bad.gguf");
        var (code, _, error) = ConsoleCapture.Run("model", "synth", "--preset", "tiny-qwen3moe", "--layer-update-scale", value, "--out", path);
        Assert.Equal(2, code);
        Assert.Contains($"--layer-update-scale '{value}'", error);
        Assert.Contains("expected a number > 0", error);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Model_info_shows_the_scale_a_file_was_synthesized_with_and_nothing_for_the_default()
    {
        string damped = Path.Combine(_dir, "damped.gguf"), plain = Path.Combine(_dir, "plain.gguf");
        Assert.Equal(0, ConsoleCapture.Run("model", "synth", "--preset", "tiny-qwen3moe", "--layer-update-scale", "0.3", "--out", damped).Code);
        Assert.Equal(0, ConsoleCapture.Run("model", "synth", "--preset", "tiny-qwen3moe", "--out", plain).Code);
        var (code, output, _) = ConsoleCapture.Run("model", "info", damped);
        Assert.Equal(0, code);
        Assert.Contains("layer update scale 0.3 ", output);
        Assert.Contains("moelab.synth.layer_update_scale", output);
        Assert.DoesNotContain("layer update scale", ConsoleCapture.Run("model", "info", plain).Output);
    }
}
