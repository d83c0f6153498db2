namespace MoeLab.Engine.Io;

/// <summary>How the expert readers keep their queue depth of reads in flight; recorded with streaming figures.</summary>
public enum ReadEngine
{
    /// <summary>One dedicated thread per outstanding read, each blocked in a positional read (pread).</summary>
    Threads,

    /// <summary>
    /// Linux native AIO (io_submit/io_getevents, as fio's libaio engine) for direct-mode reads: one submitting and one
    /// reaping thread. Falls back to <see cref="Threads"/> where unavailable (not Linux, buffered mode, io_setup refused).
    /// </summary>
    Aio,
}

public static class ReadEngines
{
    public static string Name(this ReadEngine engine) => engine == ReadEngine.Aio ? "aio" : "threads";

    public static ReadEngine Parse(string text) => text.Trim().ToLowerInvariant() switch
    {
        "threads" => ReadEngine.Threads,
        "aio" => ReadEngine.Aio,
        _ => throw new ArgumentException($"unknown read engine '{text}': expected threads or aio", nameof(text)),
    };
}
