using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Traces;

/// <summary>
/// Export to libCacheSim's <c>oracleGeneral</c> trace (traceReader/customizedReader/oracle/oracleGeneralBin.h),
/// so its 50+ eviction policies can run on a routing trace: a packed little-endian struct of 24 bytes per request
/// <code>
/// uint32 clock_time        the token index (after skipped tokens)
/// uint64 obj_id            layer · experts_per_layer + expert
/// uint32 obj_size          bytes of one expert, or 1 when counting experts as unit-size objects
/// int64  next_access_vtime 1-based index of the request's next access to the same object; -1 when none
/// </code>
/// next_access_vtime follows libCacheSim's own converter (bin/traceUtils/traceConvOracleGeneral.cpp: "the reference
/// count of the next access to the same object (reference count starts with 1)"). The CSV form is the text that
/// converter writes alongside (<c>clock_time,obj_id,obj_size,next_access_vtime</c> per line, no header); read it with
/// <c>cachesim T.csv csv lru 64 -t "time-col=1,obj-id-col=2,obj-size-col=3,has-header=false"</c>.
/// </summary>
public static class OracleGeneralExport
{
    public const int RecordBytes = 24;

    /// <summary>One request of the exported trace.</summary>
    public readonly record struct Record(uint ClockTime, ulong ObjectId, uint ObjectSize, long NextAccessVtime);

    /// <summary>The records in replay order (token-major, within a step in listed order).</summary>
    public static Record[] Records(RoutingTrace trace, uint objectSize, int skipTokens = 0)
    {
        if (objectSize == 0) throw new ArgumentException("object size 0 is ignored by libCacheSim's reader; use 1 for unit-size experts");
        int first = Math.Min(skipTokens, trace.Tokens);
        var keys = trace.RequestSequence(first);
        var records = new Record[keys.Length];
        var nextSeen = new Dictionary<long, long>();
        // Walk backwards so each request learns where its object is next requested (as libCacheSim's converter does).
        var clock = new uint[keys.Length];
        int at = 0;
        for (int t = first; t < trace.Tokens; t++)
        {
            for (int l = 0; l < trace.Layers; l++)
            {
                int n = trace.Experts(t, l).Length;
                for (int i = 0; i < n; i++) clock[at++] = (uint)(t - first);
            }
        }

        for (int i = keys.Length - 1; i >= 0; i--)
        {
            ulong id = (ulong)keys[i].Layer * (ulong)trace.ExpertsPerLayer + (ulong)keys[i].Expert;
            long next = nextSeen.TryGetValue((long)id, out long j) ? j + 1 : -1;
            nextSeen[(long)id] = i;
            records[i] = new Record(clock[i], id, objectSize, next);
        }

        return records;
    }

    public static void WriteBinary(RoutingTrace trace, Stream stream, uint objectSize, int skipTokens = 0)
    {
        Span<byte> rec = stackalloc byte[RecordBytes];
        foreach (var r in Records(trace, objectSize, skipTokens))
        {
            BinaryPrimitives.WriteUInt32LittleEndian(rec, r.ClockTime);
            BinaryPrimitives.WriteUInt64LittleEndian(rec[4..], r.ObjectId);
            BinaryPrimitives.WriteUInt32LittleEndian(rec[12..], r.ObjectSize);
            BinaryPrimitives.WriteInt64LittleEndian(rec[16..], r.NextAccessVtime);
            stream.Write(rec);
        }
    }

    public static void WriteCsv(RoutingTrace trace, TextWriter w, uint objectSize, int skipTokens = 0)
    {
        var sb = new StringBuilder();
        foreach (var r in Records(trace, objectSize, skipTokens))
        {
            sb.Clear();
            sb.Append(r.ClockTime.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(r.ObjectId.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(r.ObjectSize.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(r.NextAccessVtime.ToString(CultureInfo.InvariantCulture)).Append('\n');
            w.Write(sb);
        }
    }
}
