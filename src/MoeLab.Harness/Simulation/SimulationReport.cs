using System.Globalization;
using System.Text;
using System.Text.Json;

namespace MoeLab.Harness.Simulation;

/// <summary>Writes simulation results as JSON (snake_case, invariant numbers) or a text table.</summary>
public static class SimulationReport
{
    public static string Json(SimulationSetup setup, IReadOnlyList<SimulationResult> results)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("trace_source", setup.Trace.Header.TryGetValue("source", out string? src) ? src : null);
            w.WriteNumber("trace_tokens", setup.Trace.Tokens);
            w.WriteNumber("skip_tokens", setup.SkipTokens);
            w.WriteString("model_preset", setup.Preset?.Name);
            w.WriteString("expert_type", setup.Preset is null ? null : setup.ExpertType.ToString());
            w.WriteString("dense_type", setup.Preset is null ? null : setup.DenseType.ToString());
            if (setup.ExpertBytes is { } eb) w.WriteNumber("expert_bytes", eb);
            if (setup.Cost is { } c)
            {
                w.WriteNumber("dense_bytes_per_token", c.DenseBytesPerToken);
                w.WriteNumber("ram_available_bytes", c.RamBytes);
                w.WriteNumber("io_block_bytes", c.BlockBytes);
                w.WriteNumber("io_queue_depth", c.QueueDepth);
                w.WriteNumber("io_read_bytes", c.ExpertBytes / c.ReadsPerExpert);
                w.WriteString("io_read_size_note", c.ReadSizeNote());
            }

            w.WriteString("profile", setup.Profile?.Name);
            w.WriteBoolean("page_cache", setup.PageCache);
            w.WriteStartArray("results");
            foreach (var r in results) WriteResult(w, r);
            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void WriteResult(Utf8JsonWriter w, SimulationResult r)
    {
        w.WriteStartObject();
        w.WriteNumber("capacity", r.Capacity);
        w.WriteString("unit", r.Unit);
        w.WriteString("scope", r.Scope);
        w.WriteString("cache", r.Cache);
        w.WriteString("prefetch", r.Prefetch);
        w.WriteNumber("tokens", r.Tokens);
        w.WriteNumber("requests", r.Requests);
        w.WriteNumber("hits", r.Hits);
        w.WriteNumber("misses", r.Misses);
        w.WriteNumber("hit_ratio", r.HitRatio);
        w.WriteNumber("miss_ratio", r.MissRatio);
        Nullable(w, "bytes_read", r.BytesRead);
        Nullable(w, "bytes_per_token", r.BytesPerToken);
        w.WriteNumber("prefetch_reads", r.PrefetchReads);
        w.WriteNumber("prefetch_hits", r.PrefetchHits);
        w.WriteNumber("prefetch_wasted", r.PrefetchWasted);
        Nullable(w, "prefetch_precision", r.PrefetchPrecision);
        Nullable(w, "prefetch_recall", r.PrefetchRecall);
        if (r.StorageCacheHits is { } below) w.WriteNumber("storage_cache_hits", below);
        if (r.WallSeconds is { } wall && r.Tokens > 0)
        {
            w.WriteNumber("compute_seconds_per_token", r.ComputeSeconds!.Value / r.Tokens);
            w.WriteNumber("io_seconds_per_token", r.IoSeconds!.Value / r.Tokens);
            w.WriteNumber("stall_seconds_per_token", r.StallSeconds!.Value / r.Tokens);
            w.WriteNumber("token_seconds", wall / r.Tokens);
            w.WriteNumber("tokens_per_second", r.TokensPerSecond ?? 0);
        }

        w.WriteNumber("replay_seconds", r.ReplaySeconds);
        w.WriteNumber("accesses_per_second", r.ReplaySeconds > 0 ? r.Requests / r.ReplaySeconds : 0);
        w.WriteEndObject();
    }

    private static void Nullable(Utf8JsonWriter w, string name, double? v)
    {
        if (v is { } d) w.WriteNumber(name, d);
        else w.WriteNull(name);
    }

    private static void Nullable(Utf8JsonWriter w, string name, long? v)
    {
        if (v is { } d) w.WriteNumber(name, d);
        else w.WriteNull(name);
    }

    public static string Table(IReadOnlyList<SimulationResult> results)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(string.Format(inv, "{0,14} {1,8} {2,8} {3,12} {4,10} {5,10} {6,10} {7,10}", "capacity", "hit", "miss", "MB/token", "compute_ms", "io_ms", "stall_ms", "tok/s"));
        foreach (var r in results)
        {
            double perTok(double? s) => s is { } v && r.Tokens > 0 ? v / r.Tokens * 1e3 : double.NaN;
            sb.AppendLine(string.Format(inv, "{0,14} {1,8:P2} {2,8:P2} {3,12:F2} {4,10:F2} {5,10:F2} {6,10:F2} {7,10:F3}",
                r.Capacity, r.HitRatio, r.MissRatio, r.BytesPerToken is { } b ? b / 1e6 : double.NaN,
                perTok(r.ComputeSeconds), perTok(r.IoSeconds), perTok(r.StallSeconds), r.TokensPerSecond ?? double.NaN));
        }

        return sb.ToString();
    }
}
