namespace MoeLab.Harness.Simulation;

/// <summary>
/// SSD read cost from a device profile's table of (block size, queue depth) → (throughput, latency) points.
/// Between two measured block sizes of one depth, a request's latency is linear in its size (a fixed cost plus a per-byte
/// cost: two points fix both), and so is the per-request time its throughput implies (depth × size / throughput), from
/// which the throughput is taken back; depths are then interpolated linearly in log2(depth) between the two nearest.
/// Outside a depth's measured sizes it clamps to the edge point: a smaller read keeps the smallest point's latency and a
/// larger one the largest point's throughput (no extrapolation of either); <see cref="Clamps"/> says when.
/// </summary>
public sealed class StorageModel
{
    private readonly (int Depth, double[] Block, double[] BytesPerSecond, double[] LatencySeconds)[] _curves;

    public StorageModel(IEnumerable<DeviceProfile.ReadPoint> points)
    {
        _curves = points.GroupBy(p => p.QueueDepth).OrderBy(g => g.Key).Select(g =>
        {
            var sorted = g.OrderBy(p => p.BlockKib).ToArray();
            for (int i = 1; i < sorted.Length; i++)
            {
                if (sorted[i].BlockKib == sorted[i - 1].BlockKib) throw new ArgumentException($"two read points at {sorted[i].BlockKib} KiB and depth {g.Key}");
            }

            return (g.Key, sorted.Select(p => p.BlockKib * 1024).ToArray(), sorted.Select(p => p.ReadMbPerS * 1e6).ToArray(),
                sorted.Select(p => p.LatencyUs * 1e-6).ToArray());
        }).ToArray();
        if (_curves.Length == 0) throw new ArgumentException("a storage model needs at least one read point");
        MinBlockBytes = _curves.Max(c => c.Block[0]);
        MaxBlockBytes = _curves.Min(c => c.Block[^1]);
    }

    /// <summary>The largest of the depths' smallest measured sizes: reads below it are clamped at some depth.</summary>
    public double MinBlockBytes { get; }

    /// <summary>The smallest of the depths' largest measured sizes: reads above it are clamped at some depth.</summary>
    public double MaxBlockBytes { get; }

    /// <summary>
    /// Whether a read of <paramref name="blockBytes"/> lies outside the sizes measured at some depth, so that the edge point
    /// stands in for it: -1 smaller (charged the smallest point's latency), +1 larger (the largest point's throughput), 0 inside.
    /// </summary>
    public int Clamps(long blockBytes) => blockBytes < MinBlockBytes * (1 - 1e-9) ? -1 : blockBytes > MaxBlockBytes * (1 + 1e-9) ? 1 : 0;

    /// <summary>Throughput (bytes/s) and per-request latency (s) at this block size and queue depth.</summary>
    public (double BytesPerSecond, double LatencySeconds) At(long blockBytes, int queueDepth)
    {
        double size = Math.Max(1, blockBytes);
        int hi = 0;
        while (hi < _curves.Length && _curves[hi].Depth < queueDepth) hi++;
        if (hi == 0) return OnCurve(_curves[0], size);
        if (hi == _curves.Length) return OnCurve(_curves[^1], size);
        var (bwLo, latLo) = OnCurve(_curves[hi - 1], size);
        var (bwHi, latHi) = OnCurve(_curves[hi], size);
        double f = (Math.Log2(queueDepth) - Math.Log2(_curves[hi - 1].Depth)) / (Math.Log2(_curves[hi].Depth) - Math.Log2(_curves[hi - 1].Depth));
        return (bwLo + (f * (bwHi - bwLo)), latLo + (f * (latHi - latLo)));
    }

    /// <summary>
    /// Seconds to read <paramref name="bytes"/> issued at once as blocks of <paramref name="blockBytes"/> with
    /// <paramref name="queueDepth"/> in flight: the larger of the throughput bound and the latency bound
    /// (ceil(requests / depth) round trips). Zero bytes cost nothing.
    /// </summary>
    public double ReadSeconds(long bytes, long blockBytes, int queueDepth)
    {
        if (bytes <= 0) return 0;
        var (bw, lat) = At(blockBytes, queueDepth);
        long requests = (bytes + blockBytes - 1) / blockBytes;
        long rounds = (requests + queueDepth - 1) / queueDepth;
        return Math.Max(bytes / bw, rounds * lat);
    }

    /// <summary>
    /// Seconds one read of <paramref name="bytes"/> takes while <paramref name="outstanding"/> reads (itself included)
    /// share the device: the measured per-request latency at that block size and depth, or its share of the depth's
    /// bandwidth (outstanding × bytes / bandwidth), whichever is longer (published profiles give a device latency and a
    /// bandwidth that need not agree; measured ones agree by construction).
    /// </summary>
    public double ServiceSeconds(long bytes, int outstanding)
    {
        if (bytes <= 0) return 0;
        int n = Math.Max(1, outstanding);
        var (bw, lat) = At(bytes, n);
        return Math.Max(lat, n * (double)bytes / bw);
    }

    private static (double, double) OnCurve((int Depth, double[] Block, double[] Bw, double[] Lat) c, double size)
    {
        var x = c.Block;
        if (size <= x[0]) return (c.Bw[0], c.Lat[0]);
        if (size >= x[^1]) return (c.Bw[^1], c.Lat[^1]);
        int i = 1;
        while (x[i] < size) i++;
        double f = (size - x[i - 1]) / (x[i] - x[i - 1]);
        double lat = c.Lat[i - 1] + (f * (c.Lat[i] - c.Lat[i - 1]));
        // The per-request time the throughput implies, interpolated like the latency, gives the throughput back: measured
        // points, whose two figures agree, keep agreeing between points.
        double t0 = c.Depth * x[i - 1] / c.Bw[i - 1], t1 = c.Depth * x[i] / c.Bw[i];
        return (c.Depth * size / (t0 + (f * (t1 - t0))), lat);
    }
}
