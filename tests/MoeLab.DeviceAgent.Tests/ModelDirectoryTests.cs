namespace MoeLab.DeviceAgent.Tests;

public sealed class ModelDirectoryTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("moelab-models-").FullName;
    private readonly string _outside = Directory.CreateTempSubdirectory("moelab-outside-").FullName;

    public ModelDirectoryTests()
    {
        File.WriteAllText(Path.Combine(_root, "tiny.gguf"), "x");
        Directory.CreateDirectory(Path.Combine(_root, "sub"));
        File.WriteAllText(Path.Combine(_root, "sub", "b.gguf"), "x");
        File.WriteAllText(Path.Combine(_outside, "secret.gguf"), "x");
        File.CreateSymbolicLink(Path.Combine(_root, "link.gguf"), Path.Combine(_outside, "secret.gguf"));
    }

    public void Dispose()
    {
        Directory.Delete(_root, true);
        Directory.Delete(_outside, true);
    }

    [Theory]
    [InlineData("tiny.gguf")]
    [InlineData("sub/b.gguf")]
    [InlineData("sub/../tiny.gguf")]
    public void NamesInsideResolve(string name) =>
        Assert.StartsWith(_root, new ModelDirectory(_root).Resolve(name), StringComparison.Ordinal);

    [Theory]
    [InlineData("../x.gguf")]
    [InlineData("sub/../../etc/passwd")]
    [InlineData("/etc/passwd")]
    [InlineData("link.gguf")]
    [InlineData("")]
    [InlineData("missing.gguf")]
    public void NamesEscapingOrMissingAreRefused(string name) =>
        Assert.Throws<ModelPathException>(() => new ModelDirectory(_root).Resolve(name));

    [Fact]
    public void ListsTheModelsPresent() =>
        Assert.Equal(["link.gguf", "sub/b.gguf", "tiny.gguf"], new ModelDirectory(_root).List());
}
