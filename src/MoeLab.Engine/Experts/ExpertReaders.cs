using MoeLab.Engine.Io;

namespace MoeLab.Engine.Experts;

/// <summary>One slice read handed to an I/O thread: which expert slice, into which expert buffer.</summary>
public readonly unsafe struct SliceRead(int tag, int variant, int layer, int expert, int slice, byte* buffer)
{
    /// <summary>The owner's handle for the read (the streaming source's slot index).</summary>
    public int Tag { get; } = tag;

    public int Variant { get; } = variant;

    public int Layer { get; } = layer;

    public int Expert { get; } = expert;

    /// <summary>Which of the expert's reads (<see cref="ExpertStore.Reads"/>): 0 gate, 1 up, 2 down, or 0 gate+up, 1 down when they are adjacent.</summary>
    public int Slice { get; } = slice;

    public byte* Buffer { get; } = buffer;

    /// <summary>1 + the read's index in the owner's <see cref="ExpertReadLog"/>; 0 when not recorded. Readers hand it back unchanged.</summary>
    internal int LogEntry { get; init; }

    /// <summary>Issued as a prefetch (counts against the scheduler's PrefetchDepth until it completes).</summary>
    internal bool Prefetch { get; init; }
}

/// <summary>Feeds <see cref="ExpertReaders"/>: decides which slice is read next and learns when each read ends.</summary>
public interface ISliceReadQueue
{
    /// <summary>Blocks until a read should start; false when the readers should stop.</summary>
    bool Take(out SliceRead read);

    /// <summary>
    /// Takes a read if one is waiting, without blocking; <paramref name="stop"/> is set when the readers should stop.
    /// Lets one thread both reap completions and refill the queue (AIO); a queue that cannot answer returns false.
    /// </summary>
    bool TryTake(out SliceRead read, out bool stop)
    {
        read = default;
        stop = false;
        return false;
    }

    /// <summary>A read ended (timestamps from <see cref="System.Diagnostics.Stopwatch.GetTimestamp"/>); <paramref name="error"/> is set if it failed.</summary>
    void Completed(in SliceRead read, long transferred, long startTimestamp, long endTimestamp, Exception? error);
}

/// <summary>
/// Dedicated I/O threads keeping <c>depth</c> reads in flight without touching the thread pool (so compute tasks cannot
/// starve I/O and blocked reads cannot starve compute): with <see cref="ReadEngine.Threads"/>, <c>depth</c> threads
/// each blocked in one positional read; with <see cref="ReadEngine.Aio"/>, Linux native AIO where it can serve the
/// store (<see cref="Engine"/> says which runs).
/// </summary>
public sealed class ExpertReaders : IDisposable
{
    private readonly Thread[] _threads = [];
    private readonly AioExpertReaders? _aio;

    public unsafe ExpertReaders(ExpertStore store, ISliceReadQueue queue, int depth, string name = "moelab-io", ReadEngine engine = ReadEngine.Threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        Depth = depth;
        if (engine == ReadEngine.Aio)
        {
            _aio = AioExpertReaders.TryStart(store, queue, depth, name);
            if (_aio is not null)
            {
                Engine = ReadEngine.Aio;
                return;
            }
        }

        _threads = new Thread[depth];
        for (int i = 0; i < depth; i++)
        {
            _threads[i] = new Thread(() => Run(store, queue)) { IsBackground = true, Name = $"{name}-{i}" };
            _threads[i].Start();
        }
    }

    public int Depth { get; }

    /// <summary>The engine running: <see cref="ReadEngine.Threads"/> when AIO was asked for but is unavailable.</summary>
    public ReadEngine Engine { get; }

    /// <summary>Waits for the threads to leave; call after the queue has started returning false from Take.</summary>
    public void Dispose()
    {
        _aio?.Dispose();
        foreach (var t in _threads) t.Join();
    }

    private static unsafe void Run(ExpertStore store, ISliceReadQueue queue)
    {
        while (queue.Take(out var read))
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                long n = store.ReadSlice(read.Variant, read.Layer, read.Expert, read.Slice, read.Buffer);
                queue.Completed(read, n, start, System.Diagnostics.Stopwatch.GetTimestamp(), null);
            }
            catch (Exception e)
            {
                queue.Completed(read, 0, start, System.Diagnostics.Stopwatch.GetTimestamp(), e);
            }
        }
    }
}
