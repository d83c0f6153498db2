namespace MoeLab.Harness.Tests;

public sealed class TempDirectoryTests
{
    [Fact]
    public void Disposing_removes_the_directory_and_its_children()
    {
        var temp = new TempDirectory("moelab-tempdir-");
        string a = temp.Fresh(), b = temp.Fresh();
        Assert.NotEqual(a, b);
        File.WriteAllText(Path.Combine(b, "f.txt"), "x");
        temp.Dispose();
        Assert.False(Directory.Exists(temp.Path));
        temp.Dispose(); // twice is harmless
    }

    /// <summary>KillResumeTests links the checkout's experiments/devices into its scratch directory: the link goes, the checkout stays.</summary>
    [Fact]
    public void Disposing_removes_a_link_not_what_it_points_at()
    {
        using var target = new TempDirectory("moelab-tempdir-target-");
        File.WriteAllText(Path.Combine(target.Path, "keep.txt"), "x");
        var temp = new TempDirectory("moelab-tempdir-");
        Directory.CreateSymbolicLink(Path.Combine(temp.Fresh(), "link"), target.Path);
        temp.Dispose();
        Assert.False(Directory.Exists(temp.Path));
        Assert.True(File.Exists(Path.Combine(target.Path, "keep.txt")));
    }
}
