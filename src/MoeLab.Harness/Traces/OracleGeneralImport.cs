using System.Buffers.Binary;
using System.Globalization;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Traces;

/// <summary>
/// Reads a libCacheSim <c>oracleGeneral</c> trace (binary, or the CSV form) written by <see cref="OracleGeneralExport"/>
/// back into a routing trace: token = clock_time, layer = obj_id / experts, expert = obj_id mod experts. Requests must
/// come token-major and layer-ordered within a token (as the export writes them); every next_access_vtime is checked
/// against the sequence, so a file whose layout differs from the documented one is an error naming the record.
/// The format keeps neither router weights nor trailing tokens without requests.
/// </summary>
public static class OracleGeneralImport
{
    public static RoutingTrace ReadBinary(string path, int experts, int? layers = null)
    {
        using var s = File.OpenRead(path);
        return ReadBinary(s, path, experts, layers);
    }

    public static RoutingTrace ReadBinary(Stream stream, string name, int experts, int? layers = null)
    {
        var records = new List<OracleGeneralExport.Record>();
        var rec = new byte[OracleGeneralExport.RecordBytes];
        while (true)
        {
            int got = stream.ReadAtLeast(rec, rec.Length, throwOnEndOfStream: false);
            if (got == 0) break;
            if (got < rec.Length)
                throw new InvalidDataException($"{name}: offset {records.Count * (long)rec.Length}: a partial record of {got} bytes; oracleGeneral records are {rec.Length} bytes");
            records.Add(new OracleGeneralExport.Record(
                BinaryPrimitives.ReadUInt32LittleEndian(rec), BinaryPrimitives.ReadUInt64LittleEndian(rec.AsSpan(4)),
                BinaryPrimitives.ReadUInt32LittleEndian(rec.AsSpan(12)), BinaryPrimitives.ReadInt64LittleEndian(rec.AsSpan(16))));
        }

        return Build(records, name, experts, layers, i => $"record {i} (offset {i * (long)OracleGeneralExport.RecordBytes})");
    }

    public static RoutingTrace ReadCsv(string path, int experts, int? layers = null)
    {
        using var r = new StreamReader(path);
        return ReadCsv(r, path, experts, layers);
    }

    public static RoutingTrace ReadCsv(TextReader reader, string name, int experts, int? layers = null)
    {
        var records = new List<OracleGeneralExport.Record>();
        string? line;
        int lineNo = 0;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNo++;
            if (line.Length == 0) continue;
            string[] f = line.Split(',');
            var inv = CultureInfo.InvariantCulture;
            if (f.Length != 4 || !uint.TryParse(f[0], NumberStyles.Integer, inv, out uint clock) || !ulong.TryParse(f[1], NumberStyles.Integer, inv, out ulong id)
                || !uint.TryParse(f[2], NumberStyles.Integer, inv, out uint size) || !long.TryParse(f[3], NumberStyles.Integer, inv, out long next))
                throw new InvalidDataException($"{name}: line {lineNo}: expected clock_time,obj_id,obj_size,next_access_vtime (whole numbers), got '{line}'");
            records.Add(new OracleGeneralExport.Record(clock, id, size, next));
        }

        return Build(records, name, experts, layers, i => $"record {i}");
    }

    private static RoutingTrace Build(List<OracleGeneralExport.Record> records, string name, int experts, int? layers, Func<int, string> where)
    {
        if (experts <= 0) throw new ArgumentException($"{name}: oracleGeneral does not record the model's shape; give --experts E (experts per layer)");
        int L = layers ?? (records.Count == 0 ? 1 : (int)(records.Max(r => r.ObjectId) / (ulong)experts) + 1);
        var b = new RoutingTraceBuilder(L, experts, withWeights: false);
        var step = new List<int>();
        long token = 0;
        int layer = 0;
        var nextSeen = new Dictionary<ulong, long>();
        for (int i = records.Count - 1; i >= 0; i--)
        {
            var r = records[i];
            long expected = nextSeen.TryGetValue(r.ObjectId, out long j) ? j + 1 : -1;
            if (r.NextAccessVtime != expected)
                throw new InvalidDataException($"{name}: {where(i)}: next_access_vtime {r.NextAccessVtime}, but object {r.ObjectId} is next requested at {expected} (1-based; -1 = never)");
            nextSeen[r.ObjectId] = i;
        }

        for (int i = 0; i < records.Count; i++)
        {
            var r = records[i];
            long l = (long)(r.ObjectId / (ulong)experts);
            if (l >= L) throw new InvalidDataException($"{name}: {where(i)}: obj_id {r.ObjectId} is layer {l}, but the trace has {L} layers");
            if (r.ClockTime < token || (r.ClockTime == token && l < layer))
                throw new InvalidDataException($"{name}: {where(i)}: token {r.ClockTime}, layer {l} comes after token {token}, layer {layer}; requests must be token-major and layer-ordered");
            while (token < r.ClockTime || layer < l)
            {
                b.AddStep(step.ToArray());
                step.Clear();
                if (++layer == L)
                {
                    layer = 0;
                    token++;
                }
            }

            step.Add((int)(r.ObjectId % (ulong)experts));
        }

        if (records.Count > 0)
        {
            // Close the last token: its remaining layers had no requests.
            do
            {
                b.AddStep(step.ToArray());
                step.Clear();
            }
            while (++layer < L);
        }

        b.Header["source"] = $"oracleGeneral import of {Path.GetFileName(name)}";
        return b.Build();
    }
}
