using System.Globalization;

namespace MoeLab.Harness.Tests;

/// <summary>
/// A scratch directory under the system temp directory that a test owns: disposing it removes it with everything
/// inside (tests that left theirs behind filled /tmp with hundreds of result sets and models).
/// </summary>
public sealed class TempDirectory : IDisposable
{
    private int _children;

    public TempDirectory(string prefix) => Path = Directory.CreateTempSubdirectory(prefix).FullName;

    public string Path { get; }

    /// <summary>A new empty directory inside this one, distinct on every call (two result stores never share a root).</summary>
    public string Fresh()
    {
        string child = System.IO.Path.Combine(Path, Interlocked.Increment(ref _children).ToString(CultureInfo.InvariantCulture));
        Directory.CreateDirectory(child);
        return child;
    }

    public void Dispose()
    {
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
