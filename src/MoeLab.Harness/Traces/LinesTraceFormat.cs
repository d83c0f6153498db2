using System.Globalization;
using System.Text;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Traces;

/// <summary>
/// The plain-text trace of mixtral-offloading forks (e.g. h39s/mlsys active_experts.txt): one line per
/// (token, layer) step, token-major (<c>layers</c> consecutive lines = one token), each line the comma-separated
/// expert ids the router chose, in the order it listed them. The file carries no shape, so the number of layers
/// must be given; experts per layer defaults to the largest id + 1. Weights are absent.
/// </summary>
public static class LinesTraceFormat
{
    public static RoutingTrace Read(string path, int layers, int? experts = null)
    {
        using var r = new StreamReader(path, Encoding.UTF8, true, 1 << 16);
        return Read(r, path, layers, experts);
    }

    public static RoutingTrace Read(TextReader r, string name, int layers, int? experts = null)
    {
        if (layers <= 0) throw new ArgumentException($"{name}: the lines format needs the number of layers (--layers L)");
        var stepStart = new List<int> { 0 };
        var ids = new List<int>();
        int lineNo = 0, maxId = -1;
        string? line;
        while ((line = r.ReadLine()) is not null)
        {
            lineNo++;
            var span = line.AsSpan().Trim();
            if (span.IsEmpty)
            {
                // A trailing blank line is common; a blank line inside the trace would shift every later layer.
                if (r.Peek() < 0) break;
                throw new InvalidDataException($"{name}: line {lineNo}: empty step (every line must list at least one expert id)");
            }

            foreach (var range in span.Split(','))
            {
                var field = span[range].Trim();
                if (!int.TryParse(field, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id) || id < 0)
                    throw new InvalidDataException($"{name}: line {lineNo}: '{field.ToString()}' is not an expert id");
                if (experts is { } e && id >= e)
                    throw new InvalidDataException($"{name}: line {lineNo}: expert id {id} is outside 0..{e - 1} (--experts {e})");
                ids.Add(id);
                maxId = Math.Max(maxId, id);
            }

            stepStart.Add(ids.Count);
        }

        int steps = stepStart.Count - 1;
        if (steps == 0) throw new InvalidDataException($"{name}: no steps");
        if (steps % layers != 0)
            throw new InvalidDataException($"{name}: {steps} lines is not a whole number of tokens of {layers} layers (wrong --layers, or a truncated file)");
        var header = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["source"] = Path.GetFileName(name),
            ["source_format"] = "lines",
        };
        return new RoutingTrace(layers, experts ?? maxId + 1, stepStart.ToArray(), ids.ToArray(), null, header);
    }

    /// <summary>Writes the same text form (weights are dropped).</summary>
    public static void Write(RoutingTrace trace, TextWriter w)
    {
        var sb = new StringBuilder();
        for (int t = 0; t < trace.Tokens; t++)
        {
            for (int l = 0; l < trace.Layers; l++)
            {
                sb.Clear();
                var ids = trace.Experts(t, l);
                for (int i = 0; i < ids.Length; i++)
                {
                    if (i > 0) sb.Append(',');
                    sb.Append(ids[i].ToString(CultureInfo.InvariantCulture));
                }

                sb.Append('\n');
                w.Write(sb);
            }
        }
    }
}
