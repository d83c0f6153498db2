using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;
using MoeLab.Strategies.Prefetch;

namespace MoeLab.Strategies.Tests.Prefetch;

public sealed class PrefetchTests
{
    /// <summary>Feeds every step of a trace to a prefetcher and scores it.</summary>
    private static PrefetchScore Score(IPrefetcher prefetcher, RoutingTrace trace, Func<int, int, float[]>? hidden = null)
    {
        var score = new PrefetchScore(trace.Layers, trace.ExpertsPerLayer);
        var predictions = new ExpertKey[16];
        for (int t = 0; t < trace.Tokens; t++)
        {
            for (int l = 0; l < trace.Layers; l++)
            {
                var experts = trace.Experts(t, l);
                score.Observed(t, l, experts);
                var observed = new RoutingObservation { Token = t, Layer = l, Experts = experts, Hidden = hidden?.Invoke(t, l) ?? [] };
                int n = prefetcher.Predict(observed, predictions);
                score.Predicted(t, l, predictions.AsSpan(0, n));
            }
        }

        return score;
    }

    private static RoutingTrace Build(int layers, int experts, int tokens, Func<int, int, int[]> choose)
    {
        var b = new RoutingTraceBuilder(layers, experts, withWeights: false);
        for (int t = 0; t < tokens; t++)
        {
            for (int l = 0; l < layers; l++) b.AddStep(choose(t, l));
        }

        return b.Build();
    }

    [Fact]
    public void ScoreCountsPrecisionAndRecallByHand()
    {
        var score = new PrefetchScore(2, 8);
        score.Predicted(0, 0, [new(1, 1), new(1, 2), new(1, 2)]); // duplicate counts once
        score.Observed(0, 1, [2, 3]);                                 // 1 of 2 predictions right, 1 of 2 requests predicted
        score.Predicted(0, 1, [new(0, 5)]);                           // targets token 1, layer 0
        score.Observed(1, 0, [4, 6]);                                 // wrong
        score.Predicted(1, 0, [new(1, 7)]);                           // never observed: unresolved
        Assert.Equal(3, score.Predictions);
        Assert.Equal(1, score.Correct);
        Assert.Equal(4, score.Requests);
        Assert.Equal(1.0 / 3, score.Precision, 12);
        Assert.Equal(0.25, score.Recall, 12);
        score.Predicted(2, 0, [new(1, 0)]);                           // replaces the stale prediction for (1, 1)
        Assert.Equal(1, score.Unresolved);
    }

    [Fact]
    public void RepeatLastIsExactWhenRoutersRepeat()
    {
        // Layer l always picks {l, l+1}: every prediction is right; only the first token's two steps are unpredicted.
        var trace = Build(2, 4, 10, (_, l) => [l, l + 1]);
        var score = Score(new RepeatLast(2, 2, 1), trace);
        Assert.Equal(1.0, score.Precision);
        Assert.Equal(36.0 / 40, score.Recall, 12);
    }

    [Fact]
    public void OracleIsExactAndCountsNoMismatchOnItsOwnTrace()
    {
        var rng = new Random(5);
        var trace = Build(4, 16, 30, (_, _) => [rng.Next(8), 8 + rng.Next(8)]);
        var oracle = new Oracle(trace, 0, 1);
        var score = Score(oracle, trace);
        Assert.Equal(1.0, score.Precision);
        Assert.Equal((240.0 - 2) / 240, score.Recall, 12); // only step 0 is unpredicted
        Assert.Equal(0, oracle.Mismatches);
    }

    [Fact]
    public void TransitionFromAProfileLearnsADeterministicChain()
    {
        // Layer 1 = layer 0 + 1; the next token's layer 0 = 3 × layer 1 (mod 8): each step determines the next.
        int e0 = 0;
        var trace = Build(2, 8, 50, (_, l) =>
        {
            if (l == 0) return [e0];
            int e1 = (e0 + 1) % 8;
            e0 = 3 * e1 % 8;
            return [e1];
        });
        var score = Score(new Transition(2, 8, byToken: false, top: 1, profile: trace), trace);
        Assert.Equal(1.0, score.Precision);
        Assert.Equal(99.0 / 100, score.Recall, 12);
    }

    [Fact]
    public void OnlineTransitionPredictsOnlyTransitionsSeenBefore()
    {
        var rng = new Random(11);
        var trace = Build(3, 6, 200, (_, _) => [rng.Next(2) * 3]); // experts 0 or 3 at random
        var score = Score(new Transition(3, 6, byToken: true, top: 2, profile: null), trace);
        // Each layer's token-to-token transitions among {0,3} are all seen within a few tokens; afterwards the top-2
        // prediction {0,3} always contains the answer: recall near 1, precision near 1/2.
        Assert.InRange(score.Recall, 0.95, 1.0);
        Assert.InRange(score.Precision, 0.45, 0.55);
    }

    private sealed class OneHotRouter(int layers, int experts) : IRouterProbe
    {
        public int Layers => layers;

        public int ExpertsPerLayer => experts;

        // Layer l's router sends hidden state h (one-hot at i) to expert (i + l) mod experts.
        public void RouterProbabilities(int layer, ReadOnlySpan<float> hidden, Span<float> probabilities)
        {
            probabilities.Clear();
            int i = hidden.IndexOf(1f);
            probabilities[(i + layer) % experts] = 0.9f;
            probabilities[(i + layer + 1) % experts] = 0.1f;
        }
    }

    [Fact]
    public void NextGateReadsTheLaterRouter()
    {
        // Hidden state of token t is one-hot at t mod 8 at every layer; the trace follows the same routers.
        var trace = Build(4, 8, 20, (t, l) => [(t % 8 + l) % 8]);
        var score = Score(new NextGate(new OneHotRouter(4, 8), 1, 1), trace, (t, _) =>
        {
            var h = new float[8];
            h[t % 8] = 1;
            return h;
        });
        Assert.Equal(1.0, score.Precision);
        Assert.Equal(60.0 / 80, score.Recall, 12); // layer 0 of every token is never predicted (no wrap)
    }

    [Fact]
    public void PredictingAndScoringAllocateNothing()
    {
        var rng = new Random(2);
        var trace = Build(4, 16, 200, (_, _) => [rng.Next(8), 8 + rng.Next(8)]);
        var prefetchers = new IPrefetcher[] { new RepeatLast(4, 2, 1), new Transition(4, 16, false, 2, null), new Oracle(trace, 0, 1) };
        var predictions = new ExpertKey[16];
        foreach (var prefetcher in prefetchers)
        {
            var score = new PrefetchScore(4, 16);
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int t = 0; t < trace.Tokens; t++)
            {
                for (int l = 0; l < trace.Layers; l++)
                {
                    var experts = trace.Experts(t, l);
                    score.Observed(t, l, experts);
                    int n = prefetcher.Predict(new RoutingObservation { Token = t, Layer = l, Experts = experts }, predictions);
                    score.Predicted(t, l, predictions.AsSpan(0, n));
                }
            }

            Assert.True(GC.GetAllocatedBytesForCurrentThread() - before == 0, prefetcher.Name);
        }
    }
}
