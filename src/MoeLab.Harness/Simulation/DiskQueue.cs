namespace MoeLab.Harness.Simulation;

/// <summary>
/// The engine's reader threads as the simulator sees them: <c>depth</c> servers taking positional reads from one FIFO
/// queue (<c>ExpertReaders</c> with the fifo I/O scheduler). A read starts when it is queued and a server is free; it
/// lasts <see cref="StorageModel.ServiceSeconds"/> at the number of reads outstanding when it starts (those in flight,
/// itself, and those queued behind it in the same submission, at most the depth), so a lone read costs the depth-1
/// latency and a full queue shares the depth's bandwidth. Busy time is the union of the reads' intervals. A read served
/// by a <see cref="StorageCache"/> below the device is charged at that cache's rate instead, in the same queue.
/// </summary>
public sealed class DiskQueue
{
    private readonly StorageModel _storage;
    private readonly StorageModel? _cached;
    private readonly double[] _free; // when each server finishes its current read
    private readonly double _wake;
    private double _busyUntil;

    /// <param name="wakeSeconds">A server idle when a read is queued starts it this much later (a reader thread's wake-up).</param>
    public DiskQueue(StorageModel storage, int depth, StorageModel? cached = null, double wakeSeconds = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(depth, 1);
        _storage = storage;
        _cached = cached;
        _free = new double[depth];
        _wake = Math.Max(0, wakeSeconds);
    }

    public int Depth => _free.Length;

    /// <summary>Seconds with at least one read in flight so far.</summary>
    public double BusySeconds { get; private set; }

    /// <summary>
    /// Queues one read of <paramref name="bytes"/> at <paramref name="queuedAt"/>, with <paramref name="behind"/> more
    /// reads queued after it at the same moment; returns when it completes. <paramref name="cached"/>: the range is in the
    /// storage cache below the device (charged at its rate when the queue has one).
    /// </summary>
    /// <param name="slowdown">Multiplies the read's service time (a read served while the compute runs).</param>
    public double Read(double queuedAt, long bytes, int behind, bool cached = false, double slowdown = 1)
    {
        int server = 0;
        for (int i = 1; i < _free.Length; i++)
        {
            if (_free[i] < _free[server]) server = i;
        }

        // A server already idle when the read is queued is a reader asleep: it starts after its wake-up. One still busy
        // takes the read from the queue as it finishes, without sleeping.
        double start = _free[server] <= queuedAt ? queuedAt + _wake : _free[server];
        int inFlight = 0;
        for (int i = 0; i < _free.Length; i++)
        {
            if (i != server && _free[i] > start) inFlight++;
        }

        int outstanding = Math.Min(_free.Length, inFlight + 1 + Math.Max(0, behind));
        var rate = cached && _cached is not null ? _cached : _storage;
        double end = start + (rate.ServiceSeconds(bytes, outstanding) * slowdown);
        _free[server] = end;
        // FIFO start times never decrease, so the union of busy intervals grows by the part past the last end.
        if (end > _busyUntil)
        {
            BusySeconds += end - Math.Max(start, _busyUntil);
            _busyUntil = end;
        }

        return end;
    }
}
