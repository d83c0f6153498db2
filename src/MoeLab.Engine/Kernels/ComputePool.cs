using System.Runtime.CompilerServices;

namespace MoeLab.Engine.Kernels;

/// <summary>
/// Persistent worker threads for the decode loop's parallel work (matvec rows, attention heads). The calling thread
/// takes part; work is handed out in chunks from an atomic counter (as ggml's threadpool does) so a descheduled
/// thread does not stall the others. Workers spin briefly after a dispatch, then block; no allocation per dispatch.
/// One dispatch at a time: the pool is driven by a single thread.
/// </summary>
public sealed unsafe class ComputePool : IDisposable
{
    /// <summary>Spins of a worker after a dispatch before it blocks, with every expert in RAM: covers the short serial
    /// gaps between decode dispatches without burning a core when idle.</summary>
    public const int DefaultSpinIterations = 2000;

    /// <summary>
    /// The same while experts stream: a worker spinning through a stall holds a CPU the reader threads need to issue
    /// and complete reads. On the 2-CPU dev VM, 100 against 2000 (two interleaved rounds each, 2026-12-06): 4-layer
    /// q4_k slice 62.4 / 60.7 against 54.9 / 58.1 t/s, 12-layer with next-gate 27.9 / 27.3 against 24.2 / 24.9.
    /// </summary>
    public const int StreamingSpinIterations = 100;

    private readonly Thread[] _workers;
    private readonly object _gate = new();
    private const int GenerationMask = 0xFFFFFF;
    private const long ChunkMask = 0xFFFFF;
    private int _generation;
    private long _claim; // generation << 40 | chunk count << 20 | next chunk
    private int _done;
    private int _sleepers;
    private volatile bool _disposed;
    private Exception? _error;

    // the current job
    private JobKind _kind;
    private int _total, _chunk;
    private WeightMatrix _wa, _wb;
    private Activations _xa, _xb;
    private float* _ya, _yb;
    private ConcatTerm* _terms;
    private int _termCount;
    private IParallelBody? _body;
    private void* _bodyState;
    private delegate*<void*, int, int, void> _bodyFn;

    public ComputePool(int threadCount = 0)
    {
        ThreadCount = threadCount > 0 ? threadCount : Environment.ProcessorCount;
        _workers = new Thread[ThreadCount - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"moelab-compute-{i + 1}" };
            _workers[i].Start();
        }
    }

    private enum JobKind
    {
        MatVec,
        Concat,
        Body,
        StructBody,
    }

    /// <summary>Threads doing work, the caller included.</summary>
    public int ThreadCount { get; }

    /// <summary>Kernel tier used by this pool's matvecs (tests force lower tiers).</summary>
    internal KernelIsa Isa { get; set; } = KernelIsaInfo.Best;

    /// <summary>y = w·x with rows split over the threads.</summary>
    public void MatVec(in WeightMatrix w, QuantizedVector x, Span<float> y)
    {
        Kernels.MatVec.Validate(w, x, y.Length);
        var a = x.Prepare(w.Type);
        fixed (float* py = y)
        {
            _kind = JobKind.MatVec;
            _wa = w;
            _xa = a;
            _ya = py;
            _wb = default;
            _total = w.Rows;
            Run(RowChunk(w.Rows, w.TotalBytes));
            _ya = null;
        }
    }

    /// <summary>ya = a·x and yb = b·x in one dispatch (an expert's gate and up projections).</summary>
    public void MatVec2(in WeightMatrix a, in WeightMatrix b, QuantizedVector x, Span<float> ya, Span<float> yb)
    {
        Kernels.MatVec.Validate(a, x, ya.Length);
        Kernels.MatVec.Validate(b, x, yb.Length);
        var xa = x.Prepare(a.Type);
        var xb = x.Prepare(b.Type);
        fixed (float* pa = ya)
        fixed (float* pb = yb)
        {
            _kind = JobKind.MatVec;
            _wa = a;
            _wb = b;
            _xa = xa;
            _xb = xb;
            _ya = pa;
            _yb = pb;
            _total = a.Rows + b.Rows;
            Run(RowChunk(_total, a.TotalBytes + b.TotalBytes));
            _ya = _yb = null;
        }
    }

    /// <summary>Most matrices per <see cref="MatVecConcat"/> (their prepared terms live on the stack).</summary>
    public const int MaxConcatTerms = 64;

    /// <summary>
    /// y = w[0]·x[0] ‖ w[1]·x[1] ‖ …: matrix i's outputs follow matrix i−1's in <paramref name="y"/>, all in one
    /// dispatch (a layer's routed experts: every gate and up, then every down). One dispatch instead of one per
    /// matrix saves the hand-offs between them and lets the threads' share even out over the whole set; each row
    /// meets the same kernel as in <see cref="MatVec"/>, so the results are bit-identical to separate calls.
    /// </summary>
    public void MatVecConcat(ReadOnlySpan<WeightMatrix> w, ReadOnlySpan<QuantizedVector> x, Span<float> y)
    {
        if (w.Length != x.Length) throw new ArgumentException($"{w.Length} matrices but {x.Length} vectors", nameof(x));
        if (w.Length > MaxConcatTerms) throw new ArgumentOutOfRangeException(nameof(w), w.Length, $"at most {MaxConcatTerms} matrices");
        ConcatTerm* terms = stackalloc ConcatTerm[Math.Max(w.Length, 1)];
        int rows = 0;
        long bytes = 0;
        for (int i = 0; i < w.Length; i++)
        {
            Kernels.MatVec.Validate(w[i], x[i], y.Length - rows);
            terms[i] = new ConcatTerm(w[i], x[i].Prepare(w[i].Type), rows);
            rows += w[i].Rows;
            bytes += w[i].TotalBytes;
        }

        fixed (float* py = y)
        {
            _kind = JobKind.Concat;
            _terms = terms;
            _termCount = w.Length;
            _ya = py;
            _total = rows;
            Run(RowChunk(rows, bytes));
            _terms = null;
            _ya = null;
        }
    }

    /// <summary>One matrix of a <see cref="MatVecConcat"/>: its rows are [First, First + W.Rows) of the concatenation.</summary>
    private readonly struct ConcatTerm(WeightMatrix w, Activations x, int first)
    {
        public readonly WeightMatrix W = w;
        public readonly Activations X = x;
        public readonly int First = first;
    }

    /// <summary>Runs body over [0, count) in chunks; body is typically a cached object.</summary>
    public void For(int count, IParallelBody body)
    {
        ArgumentNullException.ThrowIfNull(body);
        _kind = JobKind.Body;
        _body = body;
        _total = count;
        Run(ItemChunk(count));
        _body = null;
    }

    /// <summary>Runs a struct body over [0, count) without boxing it.</summary>
    public void For<TBody>(int count, TBody body) where TBody : struct, IParallelBody
    {
        _kind = JobKind.StructBody;
        _bodyState = Unsafe.AsPointer(ref body); // a stack copy: stays put until Run returns
        _bodyFn = &InvokeStruct<TBody>;
        _total = count;
        Run(ItemChunk(count));
        _bodyState = null;
    }

    private static void InvokeStruct<TBody>(void* state, int start, int end) where TBody : struct, IParallelBody =>
        Unsafe.AsRef<TBody>(state).Execute(start, end);

    /// <summary>
    /// Most weight bytes per chunk of a matvec dispatch. Otherwise a job is cut into 4 chunks per thread (several per
    /// thread balance a noisy machine); the cap keeps the output head's (22 MB at 4 per thread of 2) short, so at the
    /// end of the head one thread waits for the other's last chunk for ~0.15 ms instead of ~0.9 ms. Much smaller
    /// chunks cost more than they save: each restarts the hardware prefetcher's stream (256 KiB chunks made the head
    /// of the q4_k slice 1.8x slower than 4 MiB ones, interleaved A/B on the dev VM).
    /// </summary>
    public int ChunkBytes { get; set; } = 4 << 20;

    /// <summary>A matvec of at most this many weight bytes runs on the calling thread alone: for a router (144 KiB)
    /// the hand-off to another thread costs more than the work it shares.</summary>
    public int InlineBytes { get; set; } = 256 << 10;

    /// <summary>How long (in Thread.SpinWait(20) rounds) a worker spins for the next dispatch before blocking.</summary>
    public int SpinIterations { get; set; } = DefaultSpinIterations;

    // Whole row groups per chunk, so a chunk never splits the kernels' 8-row groups.
    private int RowChunk(int rows, long bytes)
    {
        if (bytes <= InlineBytes || rows <= IRowGroupKernel.GroupRows) return Math.Max(rows, 1);
        long perRow = Math.Max(1, bytes / rows);
        long quarter = (rows + (4L * ThreadCount) - 1) / (4L * ThreadCount);
        long chunk = (Math.Min(quarter, ChunkBytes / perRow) + IRowGroupKernel.GroupRows - 1) & -IRowGroupKernel.GroupRows;
        return (int)Math.Min(Math.Max(chunk, Math.Max(IRowGroupKernel.GroupRows, (rows + ChunkMask - 1) / ChunkMask)), rows);
    }

    private int ItemChunk(int count) => Math.Max(Math.Max(1, count >> 19), (count + 4 * ThreadCount - 1) / (4 * ThreadCount));

    /// <summary>Chunks the last dispatch was cut into (1: it ran on the calling thread alone).</summary>
    internal int LastChunks { get; private set; }

    private void Run(int chunk)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        LastChunks = 0;
        if (_total <= 0) return;
        _chunk = chunk;
        _error = null;
        int chunks = (_total + chunk - 1) / chunk;
        LastChunks = chunks;
        if (_workers.Length == 0 || chunks == 1)
        {
            Execute(0, _total);
            return;
        }
        _done = 0;
        _generation = (_generation + 1) & GenerationMask;
        // full fence: the job fields are visible before the claim word that announces them (pairs with the workers'
        // sleeper count, so a worker about to block either sees this job or gets pulsed)
        Interlocked.Exchange(ref _claim, ((long)_generation << 40) | ((long)chunks << 20));
        if (Volatile.Read(ref _sleepers) > 0)
        {
            lock (_gate) Monitor.PulseAll(_gate);
        }
        RunChunks(_generation);
        // wait for chunks, not for workers: a descheduled worker that never claimed one does not hold the caller up
        var spin = new SpinWait();
        while (Volatile.Read(ref _done) != chunks) spin.SpinOnce(sleep1Threshold: -1);
        if (_error is { } error) throw new AggregateException("a parallel body failed", error);
    }

    /// <summary>
    /// Claims and runs chunks of job <paramref name="generation"/> until none is left. The claim word holds
    /// generation, chunk count and next chunk, so a late worker can never claim a chunk of a finished or newer job:
    /// while it holds a claimed chunk the job cannot complete, which keeps the job fields stable.
    /// </summary>
    private void RunChunks(int generation)
    {
        while (true)
        {
            long v = Volatile.Read(ref _claim);
            int next = (int)(v & ChunkMask), chunks = (int)((v >> 20) & ChunkMask);
            if ((int)(v >> 40) != generation || next >= chunks) return;
            if (Interlocked.CompareExchange(ref _claim, v + 1, v) != v) continue;
            try
            {
                int start = next * _chunk;
                Execute(start, Math.Min(start + _chunk, _total));
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _error, e, null);
            }
            Interlocked.Increment(ref _done);
        }
    }

    private void Execute(int start, int end)
    {
        switch (_kind)
        {
            case JobKind.MatVec:
                int rowsA = _wa.Rows;
                if (start < rowsA) Kernels.MatVec.Rows(Isa, _wa, _xa, _ya, start, Math.Min(end, rowsA));
                if (end > rowsA) Kernels.MatVec.Rows(Isa, _wb, _xb, _yb, Math.Max(start, rowsA) - rowsA, end - rowsA);
                break;
            case JobKind.Concat:
                for (int i = 0; i < _termCount; i++)
                {
                    ref readonly var t = ref _terms[i];
                    int lo = Math.Max(start, t.First), hi = Math.Min(end, t.First + t.W.Rows);
                    if (lo < hi) Kernels.MatVec.Rows(Isa, t.W, t.X, _ya + t.First, lo - t.First, hi - t.First);
                }
                break;
            case JobKind.Body:
                _body!.Execute(start, end);
                break;
            case JobKind.StructBody:
                _bodyFn(_bodyState, start, end);
                break;
        }
    }

    private void WorkerLoop()
    {
        int seen = 0;
        while (true)
        {
            int spins = 0;
            int gen;
            while ((gen = (int)(Volatile.Read(ref _claim) >> 40)) == seen && !_disposed)
            {
                if (++spins < SpinIterations)
                {
                    Thread.SpinWait(20);
                    continue;
                }
                lock (_gate)
                {
                    Interlocked.Increment(ref _sleepers); // full fence before re-reading the claim word (pairs with Run)
                    while ((int)(Volatile.Read(ref _claim) >> 40) == seen && !_disposed) Monitor.Wait(_gate);
                    Interlocked.Decrement(ref _sleepers);
                }
            }
            if (_disposed) return;
            seen = gen;
            RunChunks(gen);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_gate) Monitor.PulseAll(_gate);
        foreach (var t in _workers) t.Join();
    }
}
