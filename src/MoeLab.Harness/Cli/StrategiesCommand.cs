using System.Text;
using System.Text.Json;
using MoeLab.Strategies;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab strategies</c>: every policy in the catalog with its parameters (the YAML and CLI names).</summary>
public sealed class StrategiesCommand : ICliCommand
{
    public string Name => "strategies";

    public string Summary => "list every strategy (cache, prefetch, precision, routing, io) and its parameters";

    public string Usage => "usage: moelab strategies [--kind cache|prefetch|precision|routing|io] [--json]";

    public int Run(CliArgs args)
    {
        string? kind = args.Option("kind");
        bool json = args.Flag("json");
        args.EnsureAllUsed();
        var list = StrategyCatalog.All.Where(d => kind is null || d.Kind.ToString().Equals(kind, StringComparison.OrdinalIgnoreCase)).ToList();
        if (kind is not null && list.Count == 0 && !Enum.TryParse<StrategyKind>(kind, true, out _))
            throw new CliUsageException($"--kind: '{kind}' is not one of cache, prefetch, precision, routing, io");
        Console.Write(json ? Json(list) : Text(list));
        return 0;
    }

    internal static string Text(IReadOnlyList<StrategyDescriptor> list)
    {
        var sb = new StringBuilder();
        foreach (var group in list.GroupBy(d => d.Kind))
        {
            sb.Append(group.Key.ToString().ToLowerInvariant()).Append(":\n");
            foreach (var d in group)
            {
                sb.Append("  ").Append(d.Name);
                if (d.Aliases.Length > 0) sb.Append(" (alias ").Append(string.Join(", ", d.Aliases)).Append(')');
                sb.Append(" — ").Append(d.Summary).Append('\n');
                foreach (var p in d.Parameters)
                {
                    sb.Append("      ").Append(p.Name).Append(": ").Append(p.Type).Append(" = ").Append(p.Default);
                    if (p.AllowedValues is { Count: > 0 } a) sb.Append(" {").Append(string.Join(", ", a)).Append('}');
                    sb.Append("  ").Append(p.Description).Append('\n');
                }
            }
        }

        return sb.ToString();
    }

    internal static string Json(IReadOnlyList<StrategyDescriptor> list)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartArray();
            foreach (var d in list)
            {
                w.WriteStartObject();
                w.WriteString("kind", d.Kind.ToString().ToLowerInvariant());
                w.WriteString("name", d.Name);
                w.WriteString("summary", d.Summary);
                w.WriteStartArray("aliases");
                foreach (string a in d.Aliases) w.WriteStringValue(a);
                w.WriteEndArray();
                w.WriteStartArray("parameters");
                foreach (var p in d.Parameters)
                {
                    w.WriteStartObject();
                    w.WriteString("name", p.Name);
                    w.WriteString("type", p.Type);
                    w.WriteString("default", p.Default);
                    w.WriteString("description", p.Description);
                    if (p.AllowedValues is { } a)
                    {
                        w.WriteStartArray("allowed");
                        foreach (string v in a) w.WriteStringValue(v);
                        w.WriteEndArray();
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            }

            w.WriteEndArray();
        }

        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }
}
