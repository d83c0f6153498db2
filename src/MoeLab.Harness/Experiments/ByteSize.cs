using System.Globalization;

namespace MoeLab.Harness.Experiments;

/// <summary>Byte sizes as experiments write them: <c>256MiB</c>, <c>1.5GiB</c>, <c>512MB</c>, <c>4096B</c>.</summary>
public static class ByteSize
{
    private static readonly (string Suffix, long Factor)[] Units =
    [
        ("KiB", 1L << 10), ("MiB", 1L << 20), ("GiB", 1L << 30), ("TiB", 1L << 40),
        ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
        ("B", 1),
    ];

    /// <summary>Parses a size with a unit; false (and no exception) when the text is not one.</summary>
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        text = text.Trim();
        foreach (var (suffix, factor) in Units)
        {
            if (!text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)) continue;
            string number = text[..^suffix.Length].Trim();
            if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) || value < 0 || double.IsNaN(value)) return false;
            double b = Math.Round(value * factor);
            if (b > long.MaxValue) return false;
            bytes = (long)b;
            return true;
        }

        return false;
    }

    /// <summary>The shortest exact binary form (<c>256MiB</c>), else bytes (<c>1000B</c>).</summary>
    public static string Format(long bytes)
    {
        foreach (var (suffix, factor) in new[] { ("TiB", 1L << 40), ("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10) })
        {
            if (bytes >= factor && bytes % factor == 0) return (bytes / factor).ToString(CultureInfo.InvariantCulture) + suffix;
        }

        foreach (var (suffix, factor) in new[] { ("GiB", 1L << 30), ("MiB", 1L << 20), ("KiB", 1L << 10) })
        {
            if (bytes >= factor) return (bytes / (double)factor).ToString("0.###", CultureInfo.InvariantCulture) + suffix;
        }

        return bytes.ToString(CultureInfo.InvariantCulture) + "B";
    }
}
