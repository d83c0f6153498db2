using System.Globalization;
using System.Text;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Traces;

/// <summary>
/// The CSV form of a moelab trace, for spreadsheets and pandas. Header entries come first as <c># key=value</c>
/// comment lines (<c>layers</c> and <c>experts</c> are required; <c>weights=yes|no</c> says whether router weights
/// follow, else the first row decides), then one row per step:
/// <code>
/// token,layer,experts,weights
/// 0,0,3 4,0.61 0.39
/// </code>
/// Expert ids and weights are space-separated inside their field (no quoting needed); weights are empty when the
/// trace has none. Numbers use the invariant culture; weights round-trip exactly ("R").
/// </summary>
public static class TraceCsvFormat
{
    public const string ColumnsLine = "token,layer,experts,weights";

    public static void Write(RoutingTrace trace, TextWriter w)
    {
        w.Write("# moelab-trace-csv v1\n");
        w.Write($"# layers={trace.Layers.ToString(CultureInfo.InvariantCulture)}\n");
        w.Write($"# experts={trace.ExpertsPerLayer.ToString(CultureInfo.InvariantCulture)}\n");
        w.Write(trace.HasWeights ? "# weights=yes\n" : "# weights=no\n"); // a first step may be empty (next-gate guesses)
        foreach (var (key, value) in trace.Header.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (key is "layers" or "experts" or "weights") continue;
            w.Write($"# {key.Replace('\n', ' ').Replace('=', '_')}={value.Replace('\n', ' ')}\n");
        }

        w.Write(ColumnsLine + "\n");
        var sb = new StringBuilder();
        for (int t = 0; t < trace.Tokens; t++)
        {
            for (int l = 0; l < trace.Layers; l++)
            {
                sb.Clear();
                sb.Append(t.ToString(CultureInfo.InvariantCulture)).Append(',').Append(l.ToString(CultureInfo.InvariantCulture)).Append(',');
                var ids = trace.Experts(t, l);
                for (int i = 0; i < ids.Length; i++)
                {
                    if (i > 0) sb.Append(' ');
                    sb.Append(ids[i].ToString(CultureInfo.InvariantCulture));
                }

                sb.Append(',');
                var ws = trace.Weights(t, l);
                for (int i = 0; i < ws.Length; i++)
                {
                    if (i > 0) sb.Append(' ');
                    sb.Append(ws[i].ToString("R", CultureInfo.InvariantCulture));
                }

                sb.Append('\n');
                w.Write(sb);
            }
        }
    }

    public static void Write(RoutingTrace trace, string path)
    {
        using var w = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 16);
        Write(trace, w);
    }

    public static RoutingTrace Read(string path)
    {
        using var r = new StreamReader(path, Encoding.UTF8, true, 1 << 16);
        return Read(r, path);
    }

    public static RoutingTrace Read(TextReader r, string name)
    {
        var header = new Dictionary<string, string>(StringComparer.Ordinal);
        int lineNo = 0;
        string? line;
        while ((line = r.ReadLine()) is not null)
        {
            lineNo++;
            if (line.StartsWith('#'))
            {
                int eq = line.IndexOf('=');
                if (eq > 0) header[line[1..eq].Trim()] = line[(eq + 1)..];
                continue;
            }

            if (line.Trim() != ColumnsLine) throw new InvalidDataException($"{name}: line {lineNo}: expected the column line '{ColumnsLine}'");
            break;
        }

        int layers = HeaderInt(header, "layers", name), experts = HeaderInt(header, "experts", name);
        header.Remove("layers");
        header.Remove("experts");
        bool? withWeights = null;
        if (header.Remove("weights", out string? weightsLine))
        {
            withWeights = weightsLine.Trim() switch
            {
                "yes" => true,
                "no" => false,
                _ => throw new InvalidDataException($"{name}: '# weights={weightsLine}': expected yes or no"),
            };
        }

        RoutingTraceBuilder? b = null;
        var ids = new List<int>();
        var ws = new List<float>();
        int expectStep = 0;
        while ((line = r.ReadLine()) is not null)
        {
            lineNo++;
            if (line.Length == 0) continue;
            string[] f = line.Split(',');
            if (f.Length != 4) throw new InvalidDataException($"{name}: line {lineNo}: expected 4 fields (token,layer,experts,weights), found {f.Length}");
            int token = ParseInt(f[0], name, lineNo, "token"), layer = ParseInt(f[1], name, lineNo, "layer");
            if (token * layers + layer != expectStep)
                throw new InvalidDataException($"{name}: line {lineNo}: step (token {token}, layer {layer}) out of order; rows must be token-major with every layer");
            ids.Clear();
            ws.Clear();
            foreach (string s in f[2].Split(' ', StringSplitOptions.RemoveEmptyEntries)) ids.Add(ParseInt(s, name, lineNo, "experts"));
            foreach (string s in f[3].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (!float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out float v))
                    throw new InvalidDataException($"{name}: line {lineNo}: weight '{s}' is not a number");
                ws.Add(v);
            }

            withWeights ??= ws.Count > 0;
            b ??= new RoutingTraceBuilder(layers, experts, withWeights.Value);
            if (withWeights.Value ? ws.Count != ids.Count : ws.Count > 0)
                throw new InvalidDataException($"{name}: line {lineNo}: {ids.Count} experts but {ws.Count} weights{(withWeights.Value ? "" : " (this trace has no weights)")}");
            try
            {
                b.AddStep(ids.ToArray(), withWeights.Value ? ws.ToArray() : default);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"{name}: line {lineNo}: {e.Message}");
            }

            expectStep++;
        }

        b ??= new RoutingTraceBuilder(layers, experts, withWeights ?? false);
        if (expectStep % layers != 0) throw new InvalidDataException($"{name}: {expectStep} steps is not a whole number of tokens of {layers} layers");
        foreach (var (k, v) in header) b.Header[k] = v;
        return b.Build();
    }

    private static int HeaderInt(Dictionary<string, string> header, string key, string name)
    {
        if (!header.TryGetValue(key, out string? v) || !int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i) || i <= 0)
            throw new InvalidDataException($"{name}: the '# {key}=N' header line is missing or not a positive whole number");
        return i;
    }

    internal static int ParseInt(string s, string name, int line, string field) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i)
            ? i
            : throw new InvalidDataException($"{name}: line {line}: {field} '{s}' is not a whole number");
}
