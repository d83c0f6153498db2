namespace MoeLab.Engine.Experts;

/// <summary>
/// One read a streaming source handed to its readers: which file (an index into <see cref="ExpertReadLog.Files"/>), the
/// offset and the bytes requested, when it was issued and when it completed (Stopwatch timestamps; 0: not seen), when
/// its expert was queued for reading (0: not recorded) and whether it was issued as a prefetch.
/// </summary>
public readonly record struct DeviceRead(int File, long Offset, long Length, long IssuedAt = 0, long CompletedAt = 0, long QueuedAt = 0, bool Prefetch = false);

/// <summary>
/// The reads a streaming source issued, in the order its readers took them: file, offset and requested length (in
/// direct mode the 4 KiB-aligned covering range the device transfers). What a replay by another tool needs (fio's
/// iolog) to measure the disk on exactly the engine's access pattern. The array grows by doubling, so once it is large
/// enough (presize it with the constructor) recording allocates nothing. Not thread-safe: the source records under its lock.
/// </summary>
public sealed class ExpertReadLog
{
    private readonly List<string> _files = [];
    private DeviceRead[] _reads;
    private int _count;

    public ExpertReadLog(int capacity = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _reads = new DeviceRead[capacity];
    }

    /// <summary>The files read, indexed by <see cref="DeviceRead.File"/>.</summary>
    public IReadOnlyList<string> Files => _files;

    public int Count => _count;

    public ReadOnlySpan<DeviceRead> Reads => _reads.AsSpan(0, _count);

    /// <summary>Sum of the lengths requested.</summary>
    public long Bytes
    {
        get
        {
            long sum = 0;
            foreach (var r in Reads) sum += r.Length;
            return sum;
        }
    }

    /// <summary>The longest read's length (0 if none).</summary>
    public long LargestRead
    {
        get
        {
            long max = 0;
            foreach (var r in Reads) max = Math.Max(max, r.Length);
            return max;
        }
    }

    /// <summary>Mean issue-to-completion time of the reads whose completion was recorded, in seconds (0 if none).</summary>
    public double MeanLatencySeconds
    {
        get
        {
            long ticks = 0, n = 0;
            foreach (var r in Reads)
            {
                if (r.CompletedAt == 0 || r.IssuedAt == 0) continue;
                ticks += r.CompletedAt - r.IssuedAt;
                n++;
            }

            return n == 0 ? 0 : (double)ticks / n / System.Diagnostics.Stopwatch.Frequency;
        }
    }

    /// <summary>Appends a read; returns its index (for <see cref="Complete"/>).</summary>
    public int Record(string path, long offset, long length, long issuedAt = 0, long queuedAt = 0, bool prefetch = false)
    {
        // A store reads one or two files: a reference compare finds the index without hashing the path.
        int file = -1;
        for (int i = 0; i < _files.Count; i++)
        {
            if (ReferenceEquals(_files[i], path) || _files[i] == path)
            {
                file = i;
                break;
            }
        }

        if (file < 0)
        {
            file = _files.Count;
            _files.Add(path);
        }

        if (_count == _reads.Length) Array.Resize(ref _reads, _reads.Length * 2);
        _reads[_count] = new DeviceRead(file, offset, length, issuedAt, QueuedAt: queuedAt, Prefetch: prefetch);
        return _count++;
    }

    /// <summary>Marks read <paramref name="index"/> completed at <paramref name="completedAt"/>; ignored if the log was cleared since.</summary>
    public void Complete(int index, long completedAt)
    {
        if ((uint)index < (uint)_count) _reads[index] = _reads[index] with { CompletedAt = completedAt };
    }

    public void Clear() => _count = 0;
}
