using MoeLab.Engine.Experts;

namespace MoeLab.Engine.Tests.Experts;

public sealed class ReadDepthProfileTests
{
    private static readonly long Ms = System.Diagnostics.Stopwatch.Frequency / 1000;

    // Timestamps from 100 ms on: 0 means "not recorded".
    private static DeviceRead Read(long queued, long issued, long completed, bool prefetch = false) =>
        new(0, 0, 1000, (100 + issued) * Ms, (100 + completed) * Ms, (100 + queued) * Ms, prefetch);

    /// <summary>
    /// Queue depth 2, five reads (ms): busy 0–4 at depth 2; 4–6 depth 1 while C waits (demand); 6–10 depth 2; idle;
    /// 14–15 depth 1, nothing queued; 15–16 depth 1 while E waits (prefetch); idle; 20–22 depth 1, nothing queued.
    /// </summary>
    private static readonly DeviceRead[] Reads =
    [
        Read(0, 0, 10), // A
        Read(0, 0, 4), // B
        Read(0, 6, 10), // C: waits for a reader 4–6
        Read(12, 14, 16, prefetch: true), // D: waits while nothing is in flight (not busy time)
        Read(15, 20, 22, prefetch: true), // E
        new(0, 0, 1000, IssuedAt: 130 * Ms), // never completed: left out
    ];

    [Fact]
    public void SplitsBusyTimeByDepthAndBelowTheDepthByWhatWaited()
    {
        var p = ReadDepthProfile.Of(Reads, queueDepth: 2);

        Assert.Equal(5, p.Reads);
        Assert.Equal(5000, p.Bytes);
        Assert.Equal(0.014, p.BusySeconds, 9);
        Assert.Equal(0.022, p.LatencySeconds, 9);
        Assert.Equal(22.0 / 14, p.MeanDepth, 9);
        Assert.Equal(0.0044, p.MeanLatencySeconds, 9);
        Assert.Equal([0, 0.006, 0.008], p.SecondsAtDepth, (x, y) => Math.Abs(x - y) < 1e-9);
        Assert.Equal([0.002, 0.001, 0.003], p.BelowSeconds, (x, y) => Math.Abs(x - y) < 1e-9);
        Assert.Equal(6.0 / 14, p.BelowFraction, 9);
        Assert.Equal(2.0 / 14, p.MissingDepth(ReadDepthProfile.WaitingDemand), 9);
        Assert.Equal(1.0 / 14, p.MissingDepth(ReadDepthProfile.WaitingPrefetch), 9);
        Assert.Equal(3.0 / 14, p.MissingDepth(ReadDepthProfile.Empty), 9);
        Assert.Equal(5000 / 0.014 / 1e6, p.MegabytesPerSecond, 6);
    }

    [Fact]
    public void TheMissingDepthAddsUpToTheQueueDepthLessTheMeanDepth()
    {
        var rng = new Random(3);
        var reads = new DeviceRead[500];
        long t = 1;
        for (int i = 0; i < reads.Length; i++)
        {
            t += rng.Next(0, 3);
            long queued = t, issued = t + rng.Next(0, 4);
            reads[i] = Read(queued, issued, issued + 1 + rng.Next(0, 9), prefetch: rng.Next(3) == 0);
        }

        foreach (int depth in new[] { 1, 4, 8, 64 })
        {
            var p = ReadDepthProfile.Of(reads, depth);
            double missing = p.MissingDepth(ReadDepthProfile.WaitingDemand) + p.MissingDepth(ReadDepthProfile.WaitingPrefetch) + p.MissingDepth(ReadDepthProfile.Empty);
            double deepest = p.SecondsAtDepth[depth] / p.BusySeconds;

            // Deeper than the queue depth counts as the depth itself (the identity needs in-flight ≤ depth, as readers keep).
            if (depth == 64) Assert.Equal(depth - p.MeanDepth, missing, 9);
            Assert.Equal(p.BusySeconds, p.SecondsAtDepth.Sum(), 9);
            Assert.Equal(1 - deepest, p.BelowFraction, 9);
        }
    }

    [Fact]
    public void ProfilesOfRunsAdd()
    {
        var a = ReadDepthProfile.Of(Reads.AsSpan(0, 3), 2);
        var b = ReadDepthProfile.Of(Reads.AsSpan(3), 2);
        var sum = a + b;
        var whole = ReadDepthProfile.Of(Reads, 2);

        // The two halves do not overlap in time, so together they are the whole.
        Assert.Equal(whole.Reads, sum.Reads);
        Assert.Equal(whole.BusySeconds, sum.BusySeconds, 9);
        Assert.Equal(whole.MeanDepth, sum.MeanDepth, 9);
        Assert.Equal(whole.Deficit, sum.Deficit, (x, y) => Math.Abs(x - y) < 1e-9);
        Assert.Throws<ArgumentException>(() => a + ReadDepthProfile.Of(Reads, 4));
    }
}
