using MoeLab.Engine.Quality;

namespace MoeLab.Engine.Tests.Quality;

public sealed class NextTokenDistributionTests
{
    [Fact]
    public void Kl_of_a_toy_distribution_matches_the_hand_computed_value()
    {
        // P = (1/2, 1/4, 1/4), Q = (1/4, 1/4, 1/2): KL(P‖Q) = ½ln2 + ¼ln1 + ¼ln½ = ¼ ln 2.
        float[] p = [MathF.Log(0.5f), MathF.Log(0.25f), MathF.Log(0.25f)];
        float[] q = [MathF.Log(0.25f) + 7f, MathF.Log(0.25f) + 7f, MathF.Log(0.5f) + 7f]; // a constant shift is the same distribution
        var logP = new double[3];
        var logQ = new double[3];
        NextTokenDistribution.LogSoftmax(p, logP);
        NextTokenDistribution.LogSoftmax(q, logQ);
        Assert.Equal(0.25 * Math.Log(2), NextTokenDistribution.KlDivergence(logP, logQ), 6);
        // and the other direction: ¼ln½ + ¼ln1 + ½ln2 = ¼ ln 2 as well for this pair; a lopsided pair is not symmetric:
        float[] r = [0f, 0f, 0f];
        var logR = new double[3];
        NextTokenDistribution.LogSoftmax(r, logR);
        double pr = (0.5 * Math.Log(0.5 * 3)) + (0.5 * Math.Log(0.25 * 3)), rp = Math.Log(1.0 / 3) - ((Math.Log(0.5) + (2 * Math.Log(0.25))) / 3);
        Assert.Equal(pr, NextTokenDistribution.KlDivergence(logP, logR), 6);
        Assert.Equal(rp, NextTokenDistribution.KlDivergence(logR, logP), 6);
        Assert.NotEqual(pr, rp, 3);
    }

    [Fact]
    public void Kl_of_a_distribution_with_itself_is_zero_and_log_softmax_survives_huge_logits()
    {
        float[] x = [1000f, 999f, -1000f, 998.5f];
        var log = new double[4];
        NextTokenDistribution.LogSoftmax(x, log);
        double z = Math.Log(1 + Math.Exp(-1) + Math.Exp(-1.5));
        Assert.Equal(-z, log[0], 12);
        Assert.Equal(-1 - z, log[1], 12);
        Assert.Equal(0, NextTokenDistribution.KlDivergence(log, log));
        Assert.Equal(1, log.Sum(Math.Exp), 12);
    }

    [Fact]
    public void Tokens_without_mass_under_p_add_nothing_and_argmax_takes_the_lowest_id_on_ties()
    {
        double[] logP = [0, double.NegativeInfinity];
        double[] logQ = [Math.Log(0.5), Math.Log(0.5)];
        Assert.Equal(Math.Log(2), NextTokenDistribution.KlDivergence(logP, logQ), 12);
        Assert.Equal(1, NextTokenDistribution.ArgMax([0f, 3f, 3f, 1f]));
        Assert.Throws<ArgumentException>(() => NextTokenDistribution.LogSoftmax([float.NaN, 0f], new double[2]));
    }
}
