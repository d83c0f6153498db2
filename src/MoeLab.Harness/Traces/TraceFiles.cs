using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Traces;

/// <summary>Trace file formats by the names the CLI and YAML use.</summary>
public static class TraceFiles
{
    public static readonly string[] Formats = ["moelab", "csv", "jsonl", "lines"];

    /// <summary>The format a path implies: .mltrace → moelab, .csv, .jsonl, .lines/.txt → lines; else moelab.</summary>
    public static string FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".csv" => "csv",
        ".jsonl" or ".ndjson" => "jsonl",
        ".lines" or ".txt" => "lines",
        _ => "moelab",
    };

    /// <summary>Loads a trace; <paramref name="layers"/>/<paramref name="experts"/> give the shape text formats lack.</summary>
    public static RoutingTrace Load(string path, string? format = null, int? layers = null, int? experts = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"trace file '{path}' does not exist", path);
        format ??= FormatOf(path);
        return format switch
        {
            "moelab" => MoelabTraceFormat.Read(path),
            "csv" => TraceCsvFormat.Read(path),
            "jsonl" => JsonlTraceFormat.Read(path, layers, experts),
            "lines" => LinesTraceFormat.Read(path, layers ?? throw new ArgumentException($"{path}: the lines format needs --layers L (it does not record the model's shape)"), experts),
            "oracle-general" => OracleGeneralImport.ReadBinary(path, experts ?? 0, layers),
            "oracle-general-csv" => OracleGeneralImport.ReadCsv(path, experts ?? 0, layers),
            _ => throw new ArgumentException($"unknown trace format '{format}'; known: {string.Join(", ", Formats)}, oracle-general, oracle-general-csv (read only)"),
        };
    }

    public static void Save(RoutingTrace trace, string path, string? format = null, bool halfWeights = false)
    {
        format ??= FormatOf(path);
        switch (format)
        {
            case "moelab":
                MoelabTraceFormat.Write(trace, path, halfWeights);
                break;
            case "csv":
                TraceCsvFormat.Write(trace, path);
                break;
            case "jsonl":
                using (var s = new FileStream(path, FileMode.Create, FileAccess.Write)) JsonlTraceFormat.Write(trace, s);
                break;
            case "lines":
                using (var w = new StreamWriter(path)) LinesTraceFormat.Write(trace, w);
                break;
            default:
                throw new ArgumentException($"unknown trace format '{format}'; known: {string.Join(", ", Formats)}");
        }
    }
}
