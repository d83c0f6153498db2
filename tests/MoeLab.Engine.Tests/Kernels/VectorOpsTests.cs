using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Tests.Kernels;

public class VectorOpsTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(2048)]
    [InlineData(4099)]
    public void MatchScalarDefinitions(int n)
    {
        var rng = new Random(n);
        var x = KernelTestData.Gaussian(rng, n);
        var w = KernelTestData.Gaussian(rng, n);

        var norm = new float[n];
        VectorOps.RmsNorm(x, w, 1e-6f, norm);
        double ss = 0;
        foreach (float v in x) ss += (double)v * v;
        double scale = n == 0 ? 0 : 1 / Math.Sqrt(ss / n + 1e-6);
        for (int i = 0; i < n; i++) Assert.Equal(x[i] * scale * w[i], norm[i], 1e-5 * Math.Max(1, Math.Abs(norm[i])));

        var g = (float[])x.Clone();
        VectorOps.SwiGlu(g, w);
        for (int i = 0; i < n; i++) Assert.Equal(x[i] / (1 + Math.Exp(-x[i])) * w[i], g[i], 1e-5 * Math.Max(1, Math.Abs(g[i])));

        var s = (float[])x.Clone();
        VectorOps.Softmax(s);
        if (n > 0)
        {
            double max = x.Max(), sum = x.Sum(v => Math.Exp(v - max));
            for (int i = 0; i < n; i++) Assert.Equal(Math.Exp(x[i] - max) / sum, s[i], 1e-6);
        }

        var acc = (float[])w.Clone();
        VectorOps.Axpy(acc, 0.25f, x);
        for (int i = 0; i < n; i++) Assert.Equal(w[i] + 0.25 * x[i], acc[i], 1e-5);
    }
}
