namespace MoeLab.Engine.Io;

/// <summary>How expert bytes travel from the model file to RAM; recorded with every result.</summary>
public enum IoMode
{
    /// <summary>
    /// Through the OS page cache (what flash-moe chose). On a machine with more RAM than the model, a re-read is a
    /// memory copy, so buffered figures are RAM figures unless the cache was dropped first.
    /// </summary>
    Buffered,

    /// <summary>O_DIRECT (F_NOCACHE on macOS): every read goes to the device; buffers and offsets are aligned.</summary>
    Direct,
}

public static class IoModes
{
    public static string Name(this IoMode mode) => mode == IoMode.Direct ? "direct" : "buffered";

    public static IoMode Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "direct" => IoMode.Direct,
        "buffered" => IoMode.Buffered,
        _ => throw new ArgumentException($"unknown I/O mode '{text}': expected direct or buffered", nameof(text)),
    };
}
