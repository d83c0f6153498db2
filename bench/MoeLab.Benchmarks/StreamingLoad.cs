using System.Diagnostics;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;

namespace MoeLab.Benchmarks;

/// <summary>
/// A model-shaped file of routed experts for I/O benchmarks: per layer three stacked tensors (gate, up, down) of
/// <c>experts</c> slices each, after a header whose length is 32-aligned but not page aligned, as in a GGUF. So every
/// slice starts off a page boundary, and direct reads transfer one extra page, as they would on a real model.
/// </summary>
internal static class StreamingFile
{
    /// <summary>qwen3-30b-a3b: 128 experts, hidden 2048, expert FF 768, Q4_K: 864 KiB per slice, 2.53 MiB per expert.</summary>
    public static ExpertLayout Qwen3_30B_A3B(string path, int layers, long headerBytes = 5_000_032) =>
        Layout(path, layers, experts: 128, hidden: 2048, ff: 768, GgmlType.Q4_K, headerBytes);

    public static ExpertLayout Layout(string path, int layers, int experts, int hidden, int ff, GgmlType type, long headerBytes)
    {
        long gate = GgmlTypeInfo.RowBytes(type, hidden) * ff;
        long down = GgmlTypeInfo.RowBytes(type, ff) * hidden;
        var slices = new ExpertSlices[layers * experts];
        long at = headerBytes;
        for (int l = 0; l < layers; l++)
        {
            long gateAt = at, upAt = gateAt + (gate * experts), downAt = upAt + (gate * experts);
            at = downAt + (down * experts);
            for (int e = 0; e < experts; e++)
            {
                slices[(l * experts) + e] = new ExpertSlices(
                    new ExpertTensorSlice(gateAt + (e * gate), gate, type, ff, hidden),
                    new ExpertTensorSlice(upAt + (e * gate), gate, type, ff, hidden),
                    new ExpertTensorSlice(downAt + (e * down), down, type, hidden, ff));
            }
        }

        return new ExpertLayout(path, Enumerable.Range(0, layers).ToArray(), experts, slices);
    }

    /// <summary>Writes pseudo-random bytes covering every slice of <paramref name="layout"/>, flushed to the device and dropped from the page cache.</summary>
    public static void Write(ExpertLayout layout)
    {
        long end = 0;
        for (int l = 0; l < layout.Layers; l++)
        {
            for (int e = 0; e < layout.ExpertsPerLayer; e++) end = Math.Max(end, layout[l, e].Down.Offset + layout[l, e].Down.Length);
        }

        var chunk = new byte[64 << 20];
        new Random(1).NextBytes(chunk);
        using (var fs = new FileStream(layout.Path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            for (long at = 0, n = 0; at < end; at += chunk.Length, n++)
            {
                BitConverter.TryWriteBytes(chunk, n); // no two chunks alike
                fs.Write(chunk, 0, (int)Math.Min(chunk.Length, end - at));
            }

            fs.Flush(flushToDisk: true);
        }

        using var store = new ExpertStore(layout, Engine.Io.IoMode.Buffered);
        store.DropPageCache();
    }
}

/// <summary>
/// Random expert-slice reads through <see cref="ExpertStore"/> and <see cref="ExpertReaders"/> at a fixed depth:
/// each of <c>depth</c> I/O threads reads a uniformly random slice of a random expert, as a router with no locality would.
/// </summary>
internal sealed unsafe class RandomSliceLoad : ISliceReadQueue, IDisposable
{
    private readonly ExpertLayout _layout;
    private readonly byte*[] _buffers;
    private readonly Queue<int> _free = new(); // FIFO: the least recently used buffer is read into next
    private readonly object _gate = new();
    private readonly Random _rng;
    private long _stopAt = long.MaxValue;
    private long _remaining = long.MaxValue;
    private long _reads;
    private long _transferred;
    private long _useful;

    /// <param name="buffers">How many buffers the reads rotate through, least recently used first (at least
    /// <paramref name="depth"/>, the default): fio reuses its depth's buffers, the engine spreads reads over its slab.</param>
    public RandomSliceLoad(ExpertStore store, int depth, int seed, int buffers = 0)
    {
        _layout = store.Layout;
        _rng = new Random(seed);
        _buffers = new byte*[Math.Max(depth, buffers)];
        for (int i = 0; i < _buffers.Length; i++)
        {
            _buffers[i] = MoeLab.Engine.Kernels.WeightMemory.Allocate(store.BufferBytes, hugePages: true, alignment: ExpertStore.BufferAlignment); // huge pages, as the engine's slab
            new Span<byte>(_buffers[i], checked((int)store.BufferBytes)).Fill(0); // touched, as a slab in use is: no first-touch faults in the timing
            _free.Enqueue(i);
        }
    }

    /// <summary>Reads for <paramref name="duration"/> with <paramref name="depth"/> threads; returns (transferred bytes, slice bytes, reads, seconds).</summary>
    public static (long Transferred, long Useful, long Reads, double Seconds) Run(ExpertStore store, int depth, TimeSpan duration, int seed = 1, Engine.Io.ReadEngine engine = Engine.Io.ReadEngine.Threads, int buffers = 0)
    {
        using var load = new RandomSliceLoad(store, depth, seed, buffers);
        long start = Stopwatch.GetTimestamp();
        load._stopAt = start + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        using (var readers = new ExpertReaders(store, load, depth, "bench-io", engine))
        {
        }

        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return (load._transferred, load._useful, load._reads, seconds);
    }

    /// <summary>
    /// Exactly <paramref name="reads"/> more reads with <paramref name="depth"/> threads into this load's buffers, which
    /// were allocated and touched once, outside whatever times this call; returns the bytes transferred.
    /// </summary>
    public long ReadCount(ExpertStore store, int depth, long reads)
    {
        lock (_gate)
        {
            _remaining = reads;
            _transferred = 0;
        }

        using (new ExpertReaders(store, this, depth, "bench-io"))
        {
        }

        return _transferred;
    }

    public bool Take(out SliceRead read)
    {
        lock (_gate)
        {
            if (Stopwatch.GetTimestamp() >= _stopAt || _remaining <= 0 || _free.Count == 0)
            {
                read = default;
                return false;
            }

            _remaining--;

            int b = _free.Dequeue();
            int l = _rng.Next(_layout.Layers), e = _rng.Next(_layout.ExpertsPerLayer), s = _rng.Next(3);
            read = new SliceRead(b, 0, l, e, s, _buffers[b]);
            return true;
        }
    }

    public bool TryTake(out SliceRead read, out bool stop)
    {
        stop = !Take(out read);
        return !stop;
    }

    public void Completed(in SliceRead read, long transferred, long startTimestamp, long endTimestamp, Exception? error)
    {
        if (error is not null) throw new IOException("benchmark read failed", error);
        ref readonly var x = ref _layout[read.Layer, read.Expert];
        lock (_gate)
        {
            _free.Enqueue(read.Tag);
            _reads++;
            _transferred += transferred;
            _useful += read.Slice switch { 0 => x.Gate.Length, 1 => x.Up.Length, _ => x.Down.Length };
        }
    }

    public void Dispose()
    {
        foreach (var b in _buffers) MoeLab.Engine.Kernels.WeightMemory.Free(b);
    }
}
