using System.Globalization;

namespace MoeLab.Harness.Experiments;

/// <summary>
/// A RAM budget for cached experts as written in the matrix: an absolute size (<c>256MiB</c>), a fraction of the
/// model's routed-expert bytes (<c>0.25</c> or <c>25%</c>), or <c>all</c> (every expert resident: the in-RAM baseline).
/// </summary>
public sealed record BudgetSpec
{
    private BudgetSpec(long? bytes, double? fraction) => (Bytes, Fraction) = (bytes, fraction);

    public long? Bytes { get; }

    public double? Fraction { get; }

    public bool IsAll => Bytes is null && Fraction is null;

    public static BudgetSpec All { get; } = new(null, null);

    public static BudgetSpec OfBytes(long bytes) => new(bytes, null);

    public static BudgetSpec OfFraction(double fraction) => new(null, fraction);

    /// <summary>Parses the YAML text, or returns null with what is wrong.</summary>
    public static BudgetSpec? TryParse(string text, out string? error)
    {
        error = null;
        string t = text.Trim();
        if (t is "all" or "unlimited") return All;
        if (t.EndsWith('%'))
        {
            if (double.TryParse(t[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double pct) && pct > 0 && pct <= 100)
                return OfFraction(pct / 100);
            error = "a percentage in (0, 100]";
            return null;
        }

        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double number))
        {
            if (number > 0 && number <= 1) return OfFraction(number);
            error = "a size with a unit (256MiB, 1.5GiB, 512MB) or a fraction of the expert bytes in (0, 1]";
            return null;
        }

        if (ByteSize.TryParse(t, out long bytes) && bytes > 0) return OfBytes(bytes);
        error = "a size with a unit (256MiB, 1.5GiB, 512MB), a fraction of the expert bytes (0.25 or 25%), or 'all'";
        return null;
    }

    /// <summary>Bytes for a model whose routed experts take <paramref name="totalExpertBytes"/>; null = all resident.</summary>
    public long? Resolve(long? totalExpertBytes)
    {
        if (Bytes is { } b) return b;
        if (Fraction is not { } f) return null;
        if (totalExpertBytes is not { } total)
            throw new InvalidOperationException($"budget {this} is a fraction of the expert bytes, but the model's size is not known here; give an absolute size such as 256MiB");
        return (long)Math.Round(total * f);
    }

    /// <summary>Canonical text: <c>256MiB</c>, <c>25%</c>, <c>all</c> (used in cell names and ids).</summary>
    public override string ToString() =>
        Bytes is { } b ? ByteSize.Format(b)
        : Fraction is { } f ? (f * 100).ToString("0.###", CultureInfo.InvariantCulture) + "%"
        : "all";
}
