using System.Runtime.InteropServices;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Tests.Experts;

/// <summary>An allocation-free LRU over a fixed key space (array-linked list), so allocation tests measure the source, not the policy.</summary>
internal sealed class ArrayLru : ICachePolicy
{
    private readonly int _experts;
    private readonly long[] _stamp; // last access time per key index; 0 = absent
    private readonly long[] _size;

    public ArrayLru(long capacity, int layers, int experts)
    {
        Capacity = capacity;
        _experts = experts;
        _stamp = new long[layers * experts];
        _size = new long[layers * experts];
    }

    public string Name => "test-lru";

    public long Capacity { get; }

    public long Used { get; private set; }

    public int Count { get; private set; }

    private long _clock;

    public bool Contains(ExpertKey key) => _stamp[Index(key)] != 0;

    public bool Access(ExpertKey key, long size, long time)
    {
        int i = Index(key);
        if (_stamp[i] == 0) return false;
        _stamp[i] = ++_clock;
        return true;
    }

    public bool Admit(ExpertKey key, long size, long time, IEvictionSink? evicted)
    {
        int i = Index(key);
        if (_stamp[i] != 0) return true;
        if (size > Capacity) return false;
        while (Used + size > Capacity)
        {
            int victim = -1;
            for (int j = 0; j < _stamp.Length; j++)
            {
                if (_stamp[j] != 0 && (victim < 0 || _stamp[j] < _stamp[victim])) victim = j;
            }

            var vk = new ExpertKey(victim / _experts, victim % _experts);
            long vs = _size[victim];
            Drop(victim);
            evicted?.OnEvicted(vk, vs);
        }

        _stamp[i] = ++_clock;
        _size[i] = size;
        Used += size;
        Count++;
        return true;
    }

    public void Remove(ExpertKey key)
    {
        int i = Index(key);
        if (_stamp[i] != 0) Drop(i);
    }

    private void Drop(int i)
    {
        _stamp[i] = 0;
        Used -= _size[i];
        Count--;
    }

    private int Index(ExpertKey key) => (key.Layer * _experts) + key.Expert;
}

/// <summary>Demand reads first, then the oldest.</summary>
internal sealed class DemandFirstFifo(int depth, bool cancelStale = true, int prefetchDepth = 0) : IIoScheduler
{
    public string Name => "test-fifo";

    public int QueueDepth => depth;

    public int PrefetchDepth => prefetchDepth > 0 ? prefetchDepth : depth;

    public bool CancelStalePrefetches => cancelStale;

    public int PickNext(ReadOnlySpan<PendingRead> pending)
    {
        int best = 0;
        for (int i = 1; i < pending.Length; i++)
        {
            var p = pending[i];
            var b = pending[best];
            if (p.Priority < b.Priority || (p.Priority == b.Priority && p.EnqueuedAt < b.EnqueuedAt)) best = i;
        }

        return best;
    }
}

/// <summary>Guesses the next layer routes the same expert ids (of the next token after the last layer).</summary>
internal sealed class SameExpertsNextLayer(int layers) : IPrefetcher
{
    public string Name => "test-next-layer";

    public int Predict(in RoutingObservation observed, Span<ExpertKey> predictions)
    {
        int next = (observed.Layer + 1) % layers;
        int n = Math.Min(observed.Experts.Length, predictions.Length);
        for (int i = 0; i < n; i++) predictions[i] = new ExpertKey(next, observed.Experts[i]);
        return n;
    }
}

/// <summary>Counts events by outcome and sums their bytes; allocation-free.</summary>
internal sealed class CountingSink : IExpertEventSink
{
    public long Hits, Misses, PrefetchHits, BytesRead, BytesTransferred, Events;
    public int LastToken = -1;

    public void OnExpert(in ExpertEvent e)
    {
        Events++;
        LastToken = e.Token;
        switch (e.Outcome)
        {
            case ExpertOutcome.Hit: Hits++; break;
            case ExpertOutcome.Miss: Misses++; BytesRead += e.BytesRead; BytesTransferred += e.BytesTransferred; break;
            default: PrefetchHits++; break;
        }
    }
}

/// <summary>Skips a test where O_DIRECT cannot be used on the temp directory, saying why.</summary>
internal sealed class DirectIoFactAttribute : FactAttribute
{
    public DirectIoFactAttribute()
    {
        if (DirectIoProbe.Unsupported is { } why) Skip = why;
    }
}

internal static class DirectIoProbe
{
    private static readonly Lazy<string?> Why = new(Probe);

    public static string? Unsupported => Why.Value;

    private static string? Probe()
    {
        if (!OperatingSystem.IsLinux()) return "direct I/O page-cache checks use Linux /proc and posix_fadvise";
        string path = Path.Combine(Path.GetTempPath(), $"moelab-odirect-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            File.WriteAllBytes(path, new byte[8192]);
            using var f = Io.ModelFile.Open(path, Io.IoMode.Direct);
            return null;
        }
        catch (NotSupportedException e)
        {
            return e.Message;
        }
        finally
        {
            File.Delete(path);
        }
    }
}

/// <summary>This process's storage reads as the kernel accounts them (/proc/self/io read_bytes: bytes fetched from the device).</summary>
internal static class ProcIo
{
    public static long ReadBytes()
    {
        foreach (var line in File.ReadLines("/proc/self/io"))
        {
            if (line.StartsWith("read_bytes:", StringComparison.Ordinal)) return long.Parse(line.AsSpan(11).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        }

        throw new InvalidOperationException("/proc/self/io has no read_bytes line");
    }
}

/// <summary>mincore(2) over a read-only mapping: how many of a file's pages the page cache holds.</summary>
internal static unsafe partial class PageCache
{
    public static long ResidentPages(string path)
    {
        long length = new FileInfo(path).Length;
        using var mmf = System.IO.MemoryMappedFiles.MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read);
        using var view = mmf.CreateViewAccessor(0, 0, System.IO.MemoryMappedFiles.MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        try
        {
            long pages = (length + 4095) / 4096;
            var vec = new byte[pages];
            fixed (byte* v = vec)
            {
                if (mincore(p, (nuint)length, v) != 0) throw new InvalidOperationException($"mincore failed: errno {Marshal.GetLastPInvokeError()}");
            }

            return vec.Count(b => (b & 1) != 0);
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int mincore(void* addr, nuint length, byte* vec);
}
