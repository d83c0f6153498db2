using MathNet.Numerics.Distributions;
using MathNet.Numerics.Statistics;

namespace MoeLab.Harness.Results;

/// <summary>
/// Mean, median, sample standard deviation and a 95% confidence interval of the mean (Student's t, n−1 degrees of
/// freedom) over repetitions. Outlier policy: nothing is removed; values outside Tukey's fences (1.5 IQR beyond the
/// quartiles) are counted and reported, and the median is given beside the mean so a skewed run is visible.
/// </summary>
public sealed record Described(int Count, double Mean, double Median, double StdDev, double Ci95Low, double Ci95High, int Outliers)
{
    public const string OutlierPolicy =
        "No repetition is discarded. Repetitions outside Tukey's fences (1.5 × IQR beyond the quartiles) are counted in 'outliers'; " +
        "the median is reported beside the mean. Intervals are 95% Student-t intervals of the mean over repetitions (none with one repetition).";

    public static Described Of(IReadOnlyList<double> values)
    {
        int n = values.Count;
        if (n == 0) return new Described(0, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, 0);
        double mean = values.Mean();
        double median = values.Median();
        if (n == 1) return new Described(1, mean, median, double.NaN, double.NaN, double.NaN, 0);
        double sd = values.StandardDeviation();
        double half = StudentT.InvCDF(0, 1, n - 1, 0.975) * sd / Math.Sqrt(n);
        int outliers = 0;
        if (n >= 4)
        {
            double q1 = values.LowerQuartile(), q3 = values.UpperQuartile(), iqr = q3 - q1;
            outliers = values.Count(v => v < q1 - (1.5 * iqr) || v > q3 + (1.5 * iqr));
        }

        return new Described(n, mean, median, sd, mean - half, mean + half, outliers);
    }

    /// <summary>
    /// Ratio of means this / baseline with a 95% interval by the delta method (first-order; assumes independent
    /// samples): se(r) = r·√(se_a²/μ_a² + se_b²/μ_b²).
    /// </summary>
    public (double Ratio, double Low, double High) RatioTo(Described baseline)
    {
        double r = Mean / baseline.Mean;
        if (Count < 2 || baseline.Count < 2) return (r, double.NaN, double.NaN);
        double seA = StdDev / Math.Sqrt(Count), seB = baseline.StdDev / Math.Sqrt(baseline.Count);
        double se = Math.Abs(r) * Math.Sqrt((seA * seA / (Mean * Mean)) + (seB * seB / (baseline.Mean * baseline.Mean)));
        double t = StudentT.InvCDF(0, 1, Math.Min(Count, baseline.Count) - 1, 0.975);
        return (r, r - (t * se), r + (t * se));
    }
}
