namespace MoeLab.Engine.Experts;

/// <summary>One read a streaming source handed to its readers: which file (an index into <see cref="ExpertReadLog.Files"/>), the offset and the bytes requested.</summary>
public readonly record struct DeviceRead(int File, long Offset, long Length);

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

    public void Record(string path, long offset, long length)
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
        _reads[_count++] = new DeviceRead(file, offset, length);
    }

    public void Clear() => _count = 0;
}
