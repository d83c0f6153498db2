using System.Diagnostics;
using System.Runtime.InteropServices;
using MoeLab.Engine.Io;

namespace MoeLab.Engine.Experts;

/// <summary>
/// Keeps <c>depth</c> O_DIRECT reads in flight with Linux native AIO, as fio's libaio engine does: one thread submits
/// reads (io_submit) while a slot is free and, in the same loop, reaps completions (io_getevents), reports them and
/// refills the freed slots at once, so a completion costs one wake-up of one thread.
/// </summary>
internal sealed unsafe class AioExpertReaders : IDisposable
{
    /// <summary>How long a reap waits while slots are free, so reads queued meanwhile start without waiting for a completion.</summary>
    private const int PartialQueueTimeoutMs = 1;
    private const int FullQueueTimeoutMs = 100;

    private readonly ExpertStore _store;
    private readonly ISliceReadQueue _queue;
    private readonly int _depth;
    private readonly nint _context;
    private readonly LinuxAio.Iocb* _iocbs;
    private readonly LinuxAio.IoEvent* _events;
    private readonly SliceRead[] _reads;
    private readonly ReadTarget[] _targets;
    private readonly long[] _started;
    private readonly int[] _free;
    private readonly Thread _thread;
    private int _freeCount;

    private AioExpertReaders(ExpertStore store, ISliceReadQueue queue, int depth, nint context, string name)
    {
        _store = store;
        _queue = queue;
        _depth = depth;
        _context = context;
        _iocbs = (LinuxAio.Iocb*)NativeMemory.AllocZeroed((nuint)depth, (nuint)sizeof(LinuxAio.Iocb));
        _events = (LinuxAio.IoEvent*)NativeMemory.AllocZeroed((nuint)depth, (nuint)sizeof(LinuxAio.IoEvent));
        _reads = new SliceRead[depth];
        _targets = new ReadTarget[depth];
        _started = new long[depth];
        _free = new int[depth];
        for (int i = 0; i < depth; i++) _free[i] = i;
        _freeCount = depth;
        _thread = new Thread(Run) { IsBackground = true, Name = $"{name}-aio" };
        _thread.Start();
    }

    /// <summary>Starts AIO readers, or returns null where native AIO cannot serve this store (not Linux, not direct mode, or io_setup refused).</summary>
    public static AioExpertReaders? TryStart(ExpertStore store, ISliceReadQueue queue, int depth, string name)
    {
        if (store.Mode != IoMode.Direct || !LinuxAio.Supported) return null;
        nint context = LinuxAio.Setup(depth, out _);
        return context == 0 ? null : new AioExpertReaders(store, queue, depth, context, name);
    }

    /// <summary>Waits for the thread to leave; call after the queue has started returning false from Take.</summary>
    public void Dispose()
    {
        _thread.Join();
        LinuxAio.Destroy(_context);
        NativeMemory.Free(_iocbs);
        NativeMemory.Free(_events);
    }

    private void Run()
    {
        bool stopping = false;
        while (true)
        {
            // Refill: block for work only when nothing is in flight (then nothing needs reaping).
            while (!stopping && _freeCount > 0)
            {
                SliceRead read;
                if (_freeCount == _depth)
                {
                    if (!_queue.Take(out read))
                    {
                        stopping = true;
                        break;
                    }
                }
                else if (!_queue.TryTake(out read, out stopping))
                {
                    break;
                }

                Submit(read);
            }

            if (_freeCount == _depth)
            {
                if (stopping) return;
                continue;
            }

            long n = LinuxAio.GetEvents(_context, _events, _depth, _freeCount > 0 && !stopping ? PartialQueueTimeoutMs : FullQueueTimeoutMs, out int errno);
            if (n < 0)
            {
                if (errno == LinuxAio.EINTR) continue;
                throw new IOException($"io_getevents failed: {NativeIo.ErrorText(errno)} (errno {errno})");
            }

            for (int k = 0; k < n; k++) Reaped((int)_events[k].Data, _events[k].Result);
        }
    }

    private void Submit(in SliceRead read)
    {
        int i = _free[--_freeCount];
        var t = _store.Target(read.Variant, read.Layer, read.Expert, read.Slice, read.Buffer);
        _reads[i] = read;
        _targets[i] = t;
        _started[i] = Stopwatch.GetTimestamp();
        long rc = LinuxAio.SubmitRead(_context, &_iocbs[i], (int)t.File.Handle.DangerousGetHandle(), t.Start, t.Length, t.Destination, (ulong)i, out _);
        if (rc == 1) return;

        // The kernel refused the request (e.g. EAGAIN under memory pressure): read it synchronously instead.
        long n = 0;
        Exception? error = null;
        try
        {
            n = _store.ReadSlice(read.Variant, read.Layer, read.Expert, read.Slice, read.Buffer);
        }
        catch (Exception e)
        {
            error = e;
        }

        Finish(i, n, error);
    }

    private void Reaped(int i, long result)
    {
        ref readonly var t = ref _targets[i];
        long transferred = Math.Max(0, result);
        Exception? error = null;
        try
        {
            if (result < 0)
            {
                error = new IOException($"{t.File.Path}: read of {t.Length} bytes at offset {t.Start} failed: {NativeIo.ErrorText((int)-result)} (errno {-result})");
            }
            else if (result < t.Expected)
            {
                // A short read before the end of the file (rare): the rest synchronously, from the aligned position reached.
                t.File.Read(t.Start + result, t.Expected - result, t.Destination + result, out long rest);
                transferred += rest;
            }
        }
        catch (Exception e)
        {
            error = e;
        }

        Finish(i, transferred, error);
    }

    private void Finish(int i, long transferred, Exception? error)
    {
        var read = _reads[i];
        long started = _started[i];
        _free[_freeCount++] = i;
        _queue.Completed(read, transferred, started, Stopwatch.GetTimestamp(), error);
    }
}
