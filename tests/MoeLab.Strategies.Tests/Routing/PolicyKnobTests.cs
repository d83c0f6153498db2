using MoeLab.Engine.Policies;
using MoeLab.Strategies.Io;
using MoeLab.Strategies.Precision;
using MoeLab.Strategies.Routing;

namespace MoeLab.Strategies.Tests.Routing;

public sealed class RoutingTests
{
    private sealed class Resident(params int[] experts) : IExpertResidency
    {
        public bool IsResident(ExpertKey key) => experts.Contains(key.Expert);
    }

    private static readonly float[] Probabilities = [0.05f, 0.40f, 0.30f, 0.15f, 0.10f];

    [Fact]
    public void TopKReduceKeepsTheBestAndRescales()
    {
        int[] experts = [1, 2, 3];
        float[] weights = [0.5f, 0.3f, 0.2f];
        int n = new TopKReduce(2).Route(0, Probabilities, experts, weights, 3, new Resident());
        Assert.Equal(2, n);
        Assert.Equal(0.625f, weights[0], 5);
        Assert.Equal(0.375f, weights[1], 5);
    }

    [Fact]
    public void AdaptiveKStopsAtTheCumulativeProbabilityOrThreshold()
    {
        int[] experts = [1, 2, 3];
        float[] weights = [0.4f, 0.3f, 0.15f];
        Assert.Equal(2, new AdaptiveK(0, 0.6, 1).Route(0, Probabilities, experts, weights, 3, new Resident())); // 0.4 < 0.6, 0.7 ≥ 0.6
        Assert.Equal(0.85f, weights[0] + weights[1], 5);
        weights = [0.4f, 0.3f, 0.15f];
        Assert.Equal(1, new AdaptiveK(0.35, 1, 1).Route(0, Probabilities, experts, weights, 3, new Resident()));
        weights = [0.4f, 0.3f, 0.15f];
        Assert.Equal(3, new AdaptiveK(0.9, 1, 3).Route(0, Probabilities, experts, weights, 3, new Resident())); // min_k
    }

    [Fact]
    public void CacheAwareSwapsInAResidentExpertWithinTheMargin()
    {
        int[] experts = [1, 2];
        float[] weights = [0.6f, 0.4f];
        // Expert 2 (0.30) is not resident; 3 (0.15) is, but 0.15 short; with margin 0.2 it substitutes.
        Assert.Equal(2, new CacheAware(0.2).Route(0, Probabilities, experts, weights, 2, new Resident(1, 3)));
        Assert.Equal([1, 3], experts);
        Assert.Equal(1f, weights[0] + weights[1], 5);
        Assert.Equal(0.40f / 0.55f, weights[0], 5);
        experts = [1, 2];
        Assert.Equal(2, new CacheAware(0.1).Route(0, Probabilities, experts, weights, 2, new Resident(1, 3)));
        Assert.Equal([1, 2], experts);
    }
}

public sealed class PrecisionTests
{
    private static readonly ExpertVariant[] Variants =
    [
        new(0, "Q8_0", 8.5, 850), new(1, "Q4_0", 4.5, 450), new(2, "Q2_K", 2.625, 262),
    ];

    [Fact]
    public void UniformBitsPicksTheClosestStoredCopy()
    {
        Assert.Equal(new PrecisionChoice(1, 1), new UniformBits(4).Choose(new(0, 0), 0.5f, -1, Variants));
        Assert.Equal(new PrecisionChoice(2, 2), new UniformBits(2).Choose(new(0, 0), 0.5f, -1, Variants));
        Assert.Equal(new PrecisionChoice(0, 0), new Native().Choose(new(0, 0), 0.5f, -1, Variants));
    }

    [Fact]
    public void LowBitOnMissStreamsUnimportantMissesAtLowBits()
    {
        var policy = new LowBitOnMiss(2, 0.3);
        Assert.Equal(new PrecisionChoice(2, -1), policy.Choose(new(0, 0), 0.1f, -1, Variants));
        Assert.Equal(new PrecisionChoice(0, 0), policy.Choose(new(0, 0), 0.6f, -1, Variants));
        Assert.Equal(new PrecisionChoice(0, 0), policy.Choose(new(0, 0), 0.1f, 0, Variants));
    }

    [Fact]
    public void PerExpertBitsKeepsHotExpertsNative()
    {
        var b = new Engine.Telemetry.RoutingTraceBuilder(1, 4, withWeights: false);
        for (int t = 0; t < 10; t++) b.AddStep([t < 7 ? 2 : 1]);
        var policy = new PerExpertBits(b.Build(), 0.25, 4);
        Assert.Equal(new PrecisionChoice(0, 0), policy.Choose(new(0, 2), 0.5f, -1, Variants));
        Assert.Equal(new PrecisionChoice(1, 1), policy.Choose(new(0, 1), 0.5f, -1, Variants));
    }
}

public sealed class IoTests
{
    private static readonly PendingRead[] Pending =
    [
        new(new(0, 1), IoPriority.Prefetch, 1, 10), new(new(0, 2), IoPriority.Demand, 3, 10), new(new(0, 3), IoPriority.Demand, 2, 10),
    ];

    [Fact]
    public void DemandReadsGoFirstThenArrivalOrder()
    {
        Assert.Equal(2, new FifoIo(true, 4, true).PickNext(Pending));
        Assert.Equal(0, new FifoIo(false, 4, true).PickNext(Pending));
    }

    [Fact]
    public void PrefetchDepthDefaultsToTheQueueDepthAndNeverExceedsIt()
    {
        Assert.Equal(8, ((IIoScheduler)new FifoIo(true, 8, true)).PrefetchDepth);
        Assert.Equal(3, ((IIoScheduler)new FifoIo(true, 8, true, prefetchDepth: 3)).PrefetchDepth);
        Assert.Equal(4, ((IIoScheduler)new FifoIo(true, 4, true, prefetchDepth: 9)).PrefetchDepth);
    }
}
