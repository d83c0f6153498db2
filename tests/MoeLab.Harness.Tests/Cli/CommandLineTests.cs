using MoeLab.Harness.Cli;

namespace MoeLab.Harness.Tests.Cli;

public sealed class CommandLineTests
{
    [Fact]
    public void OptionsFlagsAndPositionalsParse()
    {
        var a = new CliArgs(["model.gguf", "--budget", "512MiB", "--json", "--io=direct", "-n", "24", "-1"]);
        Assert.Equal("512MiB", a.Option("budget"));
        Assert.Equal(24, a.Int("n", 64));
        Assert.Contains("-1", a.Positional);
        Assert.True(a.Flag("json"));
        Assert.Equal("direct", a.Option("io"));
        Assert.Contains("model.gguf", a.Positional);
        a.EnsureAllUsed();
    }

    [Fact]
    public void AnOptionNoCodeReadIsAUsageError()
    {
        var a = new CliArgs(["--budgte", "1GiB"]);
        _ = a.Option("budget");
        var e = Assert.Throws<CliUsageException>(a.EnsureAllUsed);
        Assert.Contains("--budgte", e.Message);
    }

    [Fact]
    public void BadNumbersNameTheOption()
    {
        var e = Assert.Throws<CliUsageException>(() => new CliArgs(["--lease-timeout", "soon"]).Double("lease-timeout", 1));
        Assert.Contains("--lease-timeout", e.Message);
    }

    [Fact]
    public void UnknownCommandsExitWithTwo() => Assert.Equal(2, CommandLine.Run(["no-such-verb"]));

    [Fact]
    public void ServeRejectsABadListenAddress() => Assert.Equal(2, CommandLine.Run(["serve", "--listen", "nowhere"]));
}
