namespace MoeLab.Harness.Simulation;

/// <summary>
/// Infers a storage cache below the device (<see cref="StorageCache"/>) from a region-size sweep: random direct reads
/// over nested regions of a file, at one depth. Under an LRU of C bytes, random reads over a region of R bytes hit with
/// probability min(1, C / R), so the mean read time is t(R) = t_c + (t_d − t_c) · max(0, 1 − C / R), with t_c the
/// time of a read served by the cache (a region far smaller than it) and t_d that of one served by the device. The fit
/// takes t_c from the smallest region and chooses C (and t_d by least squares for that C) to minimise the squared error
/// over the other regions.
/// </summary>
public static class StorageCacheFit
{
    /// <summary>A region read slower than the cached one by less than this is noise, not a miss (no cache is inferred).</summary>
    public const double NoiseRatio = 1.15;

    /// <summary>
    /// The LRU curve must explain at least this share of the regions' excess over the cached time (1 − residual /
    /// Σ (t − t_c)²); a sweep it does not fit (a slow spike in one region on a shared disk) is taken as no cache.
    /// </summary>
    public const double MinExplained = 0.8;

    /// <summary>Device reads are extrapolated from at most this much cache share (1 − MinMissShare) of a region.</summary>
    public const double MinMissShare = 0.25;

    /// <summary>The fitted cache: bytes (0 = none found), and the device's per-read seconds at the sweep's depth.</summary>
    public readonly record struct Result(long CacheBytes, double DeviceSeconds);

    /// <param name="regions">(region bytes, mean seconds per read), any order; the smallest is taken as fully cached.</param>
    public static Result Fit(IReadOnlyList<(long RegionBytes, double Seconds)> regions)
    {
        if (regions.Count < 2) throw new ArgumentException("a sweep needs at least two regions", nameof(regions));
        var p = regions.OrderBy(r => r.RegionBytes).ToArray();
        double tc = p[0].Seconds;
        var rest = p[1..];
        double slowest = rest.Max(r => r.Seconds);
        if (slowest < tc * NoiseRatio) return new Result(0, p[^1].Seconds);

        // Candidates: no cache, every region's size, and a geometric grid from the smallest to twice the largest region.
        var candidates = new List<double> { 0 };
        candidates.AddRange(p.Select(r => (double)r.RegionBytes));
        double lo = p[0].RegionBytes, hi = 2.0 * p[^1].RegionBytes;
        for (int i = 0; i <= 64; i++) candidates.Add(lo * Math.Pow(hi / lo, i / 64.0));

        double bestC = 0, bestK = 0, bestErr = double.PositiveInfinity;
        foreach (double c in candidates)
        {
            double mm = 0, my = 0;
            foreach (var (r, t) in rest)
            {
                double m = Math.Max(0, 1 - (c / r));
                mm += m * m;
                my += m * (t - tc);
            }

            double k = mm > 0 ? Math.Max(0, my / mm) : 0;
            double err = 0;
            foreach (var (r, t) in rest)
            {
                double e = t - tc - (k * Math.Max(0, 1 - (c / r)));
                err += e * e;
            }

            // Ties (within rounding) go to the smaller cache.
            if (err < bestErr * (1 - 1e-9))
            {
                bestErr = err;
                bestC = c;
                bestK = k;
            }
        }

        double excess = rest.Sum(r => (r.Seconds - tc) * (r.Seconds - tc));
        if (bestC <= 0 || bestErr > (1 - MinExplained) * excess) return new Result(0, p[^1].Seconds);
        long bytes = (long)bestC;
        // The largest region's share of misses bounds how far the device figure may be extrapolated.
        double largestMiss = Math.Max(MinMissShare, 1 - (bestC / p[^1].RegionBytes));
        double device = bestK > 0 ? tc + bestK : tc + ((p[^1].Seconds - tc) / largestMiss);
        return new Result(bytes, device);
    }

    /// <summary>
    /// The device's per-read seconds from a read over a region of <paramref name="regionBytes"/> that the cache
    /// partly serves: (t − t_c) / miss share + t_c, with the miss share 1 − C / R, at least <see cref="MinMissShare"/>.
    /// </summary>
    public static double DeviceSeconds(double regionSeconds, double cachedSeconds, long regionBytes, long cacheBytes)
    {
        if (cacheBytes <= 0 || regionSeconds <= cachedSeconds) return regionSeconds;
        double miss = Math.Max(MinMissShare, 1 - (cacheBytes / (double)regionBytes));
        return cachedSeconds + ((regionSeconds - cachedSeconds) / miss);
    }
}
