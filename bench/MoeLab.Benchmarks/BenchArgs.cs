using System.Globalization;

namespace MoeLab.Benchmarks;

/// <summary>The bench commands' option parsing (<c>--name value</c>; a missing option or value takes the fallback) and invariant formatting.</summary>
internal static class BenchArgs
{
    public static string? Opt(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    public static int Int(string[] args, string name, int fallback) => Opt(args, name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : fallback;

    /// <summary>A comma-separated list of integers, e.g. <c>--depths 1,8</c>.</summary>
    public static int[] Ints(string[] args, string name, string fallback) =>
        [.. (Opt(args, name) ?? fallback).Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture))];

    public static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
