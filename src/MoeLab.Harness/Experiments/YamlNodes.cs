using System.Globalization;
using MoeLab.Strategies;
using YamlDotNet.RepresentationModel;

namespace MoeLab.Harness.Experiments;

/// <summary>A value read from YAML with the position it came from, so validation can point at it.</summary>
public sealed record Located<T>(T Value, SourceLocation At);

/// <summary>
/// Typed reads from a YAML node tree that record an error (with position, expected and found) instead of throwing,
/// so one validation pass reports every problem in the file.
/// </summary>
internal sealed class YamlNodes(string file, List<ExperimentError> errors)
{
    public string File => file;

    public SourceLocation At(YamlNode node) => new(file, (int)node.Start.Line, (int)node.Start.Column);

    public void Error(YamlNode node, string message, string? expected = null, string? found = null, string? suggestion = null) =>
        errors.Add(new ExperimentError(At(node), message, expected, found, suggestion));

    public void Error(SourceLocation at, string message, string? expected = null, string? found = null, string? suggestion = null) =>
        errors.Add(new ExperimentError(at, message, expected, found, suggestion));

    public static string Describe(YamlNode node) => node switch
    {
        YamlScalarNode s when IsNull(s) => "nothing (null)",
        YamlScalarNode s => $"'{s.Value}'",
        YamlSequenceNode => "a list",
        YamlMappingNode => "a mapping",
        _ => "something else",
    };

    public static bool IsNull(YamlNode node) =>
        node is YamlScalarNode s && s.Style == YamlDotNet.Core.ScalarStyle.Plain && s.Value is null or "" or "~" or "null";

    /// <summary>The entries of a mapping whose keys must come from <paramref name="allowed"/>; unknown keys are errors with the nearest name.</summary>
    public Dictionary<string, YamlNode>? Mapping(YamlNode node, string what, IReadOnlyList<string> allowed)
    {
        if (node is not YamlMappingNode map)
        {
            Error(node, $"{what} has the wrong type", "a mapping (key: value lines)", Describe(node));
            return null;
        }

        var result = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in map.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                Error(keyNode, $"a key in {what} is not a name", "a plain name", Describe(keyNode));
                continue;
            }

            if (!allowed.Contains(key))
            {
                Error(keyNode, $"unknown key '{key}' in {what}", "one of " + string.Join(", ", allowed), null, StrategyCatalog.Nearest(key, allowed));
                continue;
            }

            result[key] = value;
        }

        return result;
    }

    public Located<string>? String(YamlNode node, string what)
    {
        if (node is YamlScalarNode s && !IsNull(s)) return new Located<string>(s.Value!, At(node));
        Error(node, $"{what} has the wrong type", "text", Describe(node));
        return null;
    }

    public Located<int>? Int(YamlNode node, string what, int min, int max = int.MaxValue)
    {
        if (node is YamlScalarNode s && int.TryParse(s.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
        {
            if (v >= min && v <= max) return new Located<int>(v, At(node));
            Error(node, $"{what} is out of range", max == int.MaxValue ? $"a whole number ≥ {min}" : $"a whole number in [{min}, {max}]", v.ToString(CultureInfo.InvariantCulture));
            return null;
        }

        Error(node, $"{what} has the wrong type", "a whole number", Describe(node));
        return null;
    }

    public Located<long>? Long(YamlNode node, string what)
    {
        if (node is YamlScalarNode s && long.TryParse(s.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v)) return new Located<long>(v, At(node));
        Error(node, $"{what} has the wrong type", "a whole number", Describe(node));
        return null;
    }

    public Located<double>? Double(YamlNode node, string what, double min, double max)
    {
        if (node is YamlScalarNode s && double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && !double.IsNaN(v))
        {
            if (v >= min && v <= max) return new Located<double>(v, At(node));
            Error(node, $"{what} is out of range", $"a number in [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}]", s.Value);
            return null;
        }

        Error(node, $"{what} has the wrong type", "a number", Describe(node));
        return null;
    }

    public Located<bool>? Bool(YamlNode node, string what)
    {
        if (node is YamlScalarNode s)
        {
            switch (s.Value?.ToLowerInvariant())
            {
                case "true" or "yes" or "on":
                    return new Located<bool>(true, At(node));
                case "false" or "no" or "off":
                    return new Located<bool>(false, At(node));
            }
        }

        Error(node, $"{what} has the wrong type", "true or false", Describe(node));
        return null;
    }

    /// <summary>A scalar or a list of them, as nodes (an axis or exclusion may give one value or several).</summary>
    public IReadOnlyList<YamlNode> OneOrMany(YamlNode node) => node is YamlSequenceNode seq ? seq.Children.ToList() : [node];
}
