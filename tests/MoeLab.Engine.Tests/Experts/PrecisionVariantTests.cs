using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Tests.Experts;

public sealed class PrecisionVariantTests
{
    private const int Layers = 2;
    private const int Experts = 8;

    [Fact]
    public void EachExpertIsServedAtThePrecisionThePolicyChoseAndReadBytesFollowTheVariant()
    {
        using var native = new SyntheticExpertFile(Layers, Experts, seed: 80, type: GgmlType.Q8_0);
        using var lowBit = new SyntheticExpertFile(Layers, Experts, seed: 81, type: GgmlType.Q4_0);
        using var store = new ExpertStore([native.Layout, lowBit.Layout], IoMode.Buffered);
        var options = new StreamingOptions { BudgetBytes = 20 * store.BufferBytes, WorkingBuffers = 4 };
        var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
        var precision = new HeavyExpertsNative();
        using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(2), precision: precision);
        Assert.Equal("Q8_0", source.Variants[0].TypeName);
        Assert.Equal(4.5, source.Variants[1].BitsPerWeight, 3);
        var sink = new RecordingSink();
        source.EventSink = sink;

        var rng = new Random(80);
        long expectMissBytes = 0;
        for (int t = 0; t < 40; t++)
        {
            for (int l = 0; l < Layers; l++)
            {
                int[] chosen = Enumerable.Range(0, Experts).OrderBy(_ => rng.Next()).Take(4).ToArray();
                float[] weights = [0.4f, 0.3f, 0.2f, 0.1f];
                source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen, Weights = weights });
                for (int i = 0; i < 4; i++)
                {
                    var w = source.Acquire(l, chosen[i]);
                    var e = sink.Last;
                    Assert.Equal(chosen[i], e.Expert);
                    int want = weights[i] >= 0.25f ? 0 : 1;
                    Assert.Equal(want, e.Variant);
                    (want == 0 ? native : lowBit).AssertMatches(l, chosen[i], w);
                    if (e.Outcome == ExpertOutcome.Miss) expectMissBytes += (want == 0 ? native : lowBit).ExpertBytes;
                    source.Release(l, chosen[i]);
                }

                source.Accounting();
            }
        }

        var c = source.Counters;
        Assert.True(c.Hits > 0 && c.Misses > 0, $"hits {c.Hits}, misses {c.Misses}");
        Assert.Equal(expectMissBytes, c.BytesRead);
    }

    /// <summary>Native precision for the two heaviest-weighted experts, 4-bit for the rest; caches what it computes.</summary>
    private sealed class HeavyExpertsNative : IPrecisionPolicy
    {
        public string Name => "test-heavy-native";

        public PrecisionChoice Choose(ExpertKey key, float routerWeight, int cachedVariant, ReadOnlySpan<ExpertVariant> variants)
        {
            int v = routerWeight >= 0.25f ? 0 : 1;
            return new PrecisionChoice(v, v);
        }
    }

    private sealed class RecordingSink : IExpertEventSink
    {
        public ExpertEvent Last { get; private set; }

        public void OnExpert(in ExpertEvent e) => Last = e;
    }
}
