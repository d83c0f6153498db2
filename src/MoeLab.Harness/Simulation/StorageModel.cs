namespace MoeLab.Harness.Simulation;

/// <summary>
/// SSD read cost from a device profile's table of (block size, queue depth) → (throughput, latency) points.
/// Interpolates linearly in log2(block) between the points of one depth, then in log2(depth) between the two
/// nearest depths; outside the table it clamps to the edge (no extrapolation beyond what was measured).
/// </summary>
public sealed class StorageModel
{
    private readonly (int Depth, double[] LogBlock, double[] BytesPerSecond, double[] LatencySeconds)[] _curves;

    public StorageModel(IEnumerable<DeviceProfile.ReadPoint> points)
    {
        _curves = points.GroupBy(p => p.QueueDepth).OrderBy(g => g.Key).Select(g =>
        {
            var sorted = g.OrderBy(p => p.BlockKib).ToArray();
            return (g.Key, sorted.Select(p => Math.Log2(p.BlockKib * 1024)).ToArray(), sorted.Select(p => p.ReadMbPerS * 1e6).ToArray(),
                sorted.Select(p => p.LatencyUs * 1e-6).ToArray());
        }).ToArray();
        if (_curves.Length == 0) throw new ArgumentException("a storage model needs at least one read point");
    }

    /// <summary>Throughput (bytes/s) and per-request latency (s) at this block size and queue depth.</summary>
    public (double BytesPerSecond, double LatencySeconds) At(long blockBytes, int queueDepth)
    {
        double lb = Math.Log2(Math.Max(1, blockBytes));
        int hi = 0;
        while (hi < _curves.Length && _curves[hi].Depth < queueDepth) hi++;
        if (hi == 0) return OnCurve(_curves[0], lb);
        if (hi == _curves.Length) return OnCurve(_curves[^1], lb);
        var (bwLo, latLo) = OnCurve(_curves[hi - 1], lb);
        var (bwHi, latHi) = OnCurve(_curves[hi], lb);
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

    private static (double, double) OnCurve((int Depth, double[] LogBlock, double[] Bw, double[] Lat) c, double lb)
    {
        var x = c.LogBlock;
        if (lb <= x[0]) return (c.Bw[0], c.Lat[0]);
        if (lb >= x[^1]) return (c.Bw[^1], c.Lat[^1]);
        int i = 1;
        while (x[i] < lb) i++;
        double f = (lb - x[i - 1]) / (x[i] - x[i - 1]);
        return (c.Bw[i - 1] + (f * (c.Bw[i] - c.Bw[i - 1])), c.Lat[i - 1] + (f * (c.Lat[i] - c.Lat[i - 1])));
    }
}
