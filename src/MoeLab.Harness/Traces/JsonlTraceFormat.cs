using System.Text;
using System.Text.Json;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Traces;

/// <summary>
/// JSON Lines routing traces: one object per (layer, token) with the expert ids and their gating probabilities,
/// as MoE-infinity / expert-tracing scripts dump them, e.g.
/// <code>{"token": 12, "layer": 3, "experts": [5, 1], "weights": [0.62, 0.38]}</code>
/// Accepted key spellings: token | token_id | token_idx | t; layer | layer_id | layer_idx | l;
/// experts | expert_ids | topk_ids | ids; weights | probs | gating_probs | router_weights | scores (optional).
/// Records may come in any order; every (token, layer) pair up to the largest must be present exactly once.
/// </summary>
public static class JsonlTraceFormat
{
    private static readonly string[] TokenKeys = ["token", "token_id", "token_idx", "t"];
    private static readonly string[] LayerKeys = ["layer", "layer_id", "layer_idx", "l"];
    private static readonly string[] ExpertKeys = ["experts", "expert_ids", "topk_ids", "ids"];
    private static readonly string[] WeightKeys = ["weights", "probs", "gating_probs", "router_weights", "scores"];

    public static RoutingTrace Read(string path, int? layers = null, int? experts = null)
    {
        using var r = new StreamReader(path, Encoding.UTF8, true, 1 << 16);
        return Read(r, path, layers, experts);
    }

    public static RoutingTrace Read(TextReader r, string name, int? layers = null, int? experts = null)
    {
        var records = new Dictionary<(int Token, int Layer), (int[] Ids, float[]? Weights, int Line)>();
        int lineNo = 0, maxToken = -1, maxLayer = -1, maxId = -1;
        bool? withWeights = null;
        string? line;
        while ((line = r.ReadLine()) is not null)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement root;
            try
            {
                using var doc = JsonDocument.Parse(line);
                root = doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{name}: line {lineNo}: not JSON ({e.Message})");
            }

            if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{name}: line {lineNo}: expected a JSON object per line");
            int token = IntField(root, TokenKeys, name, lineNo);
            int layer = IntField(root, LayerKeys, name, lineNo);
            if (token < 0 || layer < 0) throw new InvalidDataException($"{name}: line {lineNo}: negative token or layer");
            var idsEl = Field(root, ExpertKeys) ?? throw new InvalidDataException($"{name}: line {lineNo}: no expert list (one of {string.Join(", ", ExpertKeys)})");
            int[] ids = idsEl.EnumerateArray().Select(e => e.TryGetInt32(out int v) && v >= 0 ? v : throw new InvalidDataException($"{name}: line {lineNo}: expert id {e} is not a non-negative whole number")).ToArray();
            float[]? ws = Field(root, WeightKeys) is { } wEl ? wEl.EnumerateArray().Select(e => (float)e.GetDouble()).ToArray() : null;
            if (ws is not null && ws.Length != ids.Length)
                throw new InvalidDataException($"{name}: line {lineNo}: {ids.Length} experts but {ws.Length} weights");
            withWeights ??= ws is not null;
            if (withWeights != (ws is not null)) throw new InvalidDataException($"{name}: line {lineNo}: some records have weights and others not");
            if (!records.TryAdd((token, layer), (ids, ws, lineNo)))
                throw new InvalidDataException($"{name}: line {lineNo}: (token {token}, layer {layer}) already given on line {records[(token, layer)].Line}");
            maxToken = Math.Max(maxToken, token);
            maxLayer = Math.Max(maxLayer, layer);
            foreach (int id in ids) maxId = Math.Max(maxId, id);
        }

        if (records.Count == 0) throw new InvalidDataException($"{name}: no records");
        int L = layers ?? maxLayer + 1;
        if (maxLayer >= L) throw new InvalidDataException($"{name}: layer {maxLayer} is outside 0..{L - 1} (--layers {L})");
        int E = experts ?? maxId + 1;
        if (maxId >= E) throw new InvalidDataException($"{name}: expert id {maxId} is outside 0..{E - 1} (--experts {E})");
        var b = new RoutingTraceBuilder(L, E, withWeights == true);
        for (int t = 0; t <= maxToken; t++)
        {
            for (int l = 0; l < L; l++)
            {
                if (!records.TryGetValue((t, l), out var rec))
                    throw new InvalidDataException($"{name}: no record for token {t}, layer {l} (every token needs all {L} layers)");
                b.AddStep(rec.Ids, rec.Weights);
            }
        }

        b.Header["source"] = Path.GetFileName(name);
        b.Header["source_format"] = "jsonl";
        return b.Build();
    }

    /// <summary>Writes one record per step with the canonical keys (token, layer, experts, weights).</summary>
    public static void Write(RoutingTrace trace, Stream stream)
    {
        var newline = "\n"u8.ToArray();
        for (int t = 0; t < trace.Tokens; t++)
        {
            for (int l = 0; l < trace.Layers; l++)
            {
                using (var w = new Utf8JsonWriter(stream))
                {
                    w.WriteStartObject();
                    w.WriteNumber("token", t);
                    w.WriteNumber("layer", l);
                    w.WriteStartArray("experts");
                    foreach (int e in trace.Experts(t, l)) w.WriteNumberValue(e);
                    w.WriteEndArray();
                    if (trace.HasWeights)
                    {
                        w.WriteStartArray("weights");
                        foreach (float x in trace.Weights(t, l)) w.WriteNumberValue(x);
                        w.WriteEndArray();
                    }

                    w.WriteEndObject();
                }

                stream.Write(newline);
            }
        }
    }

    private static JsonElement? Field(JsonElement obj, string[] keys)
    {
        foreach (string k in keys)
        {
            if (obj.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.Array) return v;
        }

        return null;
    }

    private static int IntField(JsonElement obj, string[] keys, string name, int line)
    {
        foreach (string k in keys)
        {
            if (obj.TryGetProperty(k, out var v))
            {
                return v.TryGetInt32(out int i) ? i : throw new InvalidDataException($"{name}: line {line}: '{k}' is not a whole number");
            }
        }

        throw new InvalidDataException($"{name}: line {line}: no {keys[0]} field (one of {string.Join(", ", keys)})");
    }
}
