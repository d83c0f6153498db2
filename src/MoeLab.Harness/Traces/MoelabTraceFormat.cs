using System.Buffers.Binary;
using System.Text;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Traces;

/// <summary>
/// The moelab binary routing-trace format (<c>.mltrace</c>), version 1. All integers little-endian.
/// <code>
/// offset size  field
///  0      8    magic "MOELABTR"
///  8      2    version = 1
/// 10      2    flags: bit0 router weights present; bit1 weights are f16 (else f32);
///                     bit2 fixed-k steps (every step has exactly k ids, no per-step count)
/// 12      4    layers (MoE layers per token)
/// 16      4    experts per layer
/// 20      4    k: experts per step when fixed-k, else the largest step
/// 24      4    tokens
/// 28      8    requests (total expert ids in all steps)
/// 36      4    n = header entries
/// 40      ..   n × { u16 key length, key UTF-8, u32 value length, value UTF-8 }  (model name under "model",
///              generator parameters under "synth.*", provenance under "source")
///  ..     ..   tokens × layers steps, token-major (step = token·layers + layer), each:
///              [u16 count, unless fixed-k] count × u16 expert id, then count × weight (f16 or f32) if bit0
/// </code>
/// Requests within a step keep the router's order (best first), which is the replay order.
/// </summary>
public static class MoelabTraceFormat
{
    public static ReadOnlySpan<byte> Magic => "MOELABTR"u8;

    public const ushort Version = 1;

    private const ushort FlagWeights = 1;
    private const ushort FlagHalf = 2;
    private const ushort FlagFixedK = 4;

    public static void Write(RoutingTrace trace, string path, bool halfWeights = false)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        Write(trace, stream, halfWeights);
    }

    public static void Write(RoutingTrace trace, Stream stream, bool halfWeights = false)
    {
        if (trace.ExpertsPerLayer > ushort.MaxValue + 1)
            throw new ArgumentException($"the moelab format stores expert ids as uint16; {trace.ExpertsPerLayer} experts per layer do not fit");
        var starts = trace.StepStarts;
        int k = 0;
        bool fixedK = true;
        for (int s = 0; s < trace.Steps; s++)
        {
            int n = starts[s + 1] - starts[s];
            if (s > 0 && n != k) fixedK = false;
            k = Math.Max(k, n);
        }

        if (trace.Steps == 0) fixedK = false;
        ushort flags = (ushort)((trace.HasWeights ? FlagWeights : 0) | (trace.HasWeights && halfWeights ? FlagHalf : 0) | (fixedK ? FlagFixedK : 0));

        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write(Magic);
        w.Write(Version);
        w.Write(flags);
        w.Write(trace.Layers);
        w.Write(trace.ExpertsPerLayer);
        w.Write(k);
        w.Write(trace.Tokens);
        w.Write((long)trace.Requests);
        w.Write(trace.Header.Count);
        foreach (var (key, value) in trace.Header.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            byte[] kb = Encoding.UTF8.GetBytes(key);
            byte[] vb = Encoding.UTF8.GetBytes(value);
            if (kb.Length > ushort.MaxValue) throw new ArgumentException($"header key '{key[..40]}…' is longer than 65535 bytes");
            w.Write((ushort)kb.Length);
            w.Write(kb);
            w.Write(vb.Length);
            w.Write(vb);
        }

        var experts = trace.AllExperts;
        var weights = trace.AllWeights;
        Span<byte> buf = stackalloc byte[4];
        for (int s = 0; s < trace.Steps; s++)
        {
            int a = starts[s], b = starts[s + 1];
            if (!fixedK) w.Write((ushort)(b - a));
            for (int i = a; i < b; i++) w.Write((ushort)experts[i]);
            if (!trace.HasWeights) continue;
            for (int i = a; i < b; i++)
            {
                if (halfWeights)
                {
                    BinaryPrimitives.WriteHalfLittleEndian(buf, (Half)weights[i]);
                    w.Write(buf[..2]);
                }
                else
                {
                    w.Write(weights[i]);
                }
            }
        }
    }

    public static RoutingTrace Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(stream, path);
    }

    public static RoutingTrace Read(Stream stream, string name)
    {
        using var r = new BinaryReader(stream, Encoding.UTF8, leaveOpen: true);
        long offset = 0;
        byte[] magic = Take(r, 8, ref offset, name, "magic");
        if (!magic.AsSpan().SequenceEqual(Magic))
            throw new InvalidDataException($"{name}: offset 0: not a moelab trace (magic is not \"MOELABTR\"); use --trace-format lines or jsonl for text traces");
        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(Take(r, 2, ref offset, name, "version"));
        if (version != Version) throw new InvalidDataException($"{name}: offset 8: trace version {version}; this build reads version {Version}");
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(Take(r, 2, ref offset, name, "flags"));
        if ((flags & ~(FlagWeights | FlagHalf | FlagFixedK)) != 0) throw new InvalidDataException($"{name}: offset 10: unknown flag bits 0x{flags:x4}");
        int layers = Int(r, ref offset, name, "layers");
        int experts = Int(r, ref offset, name, "experts per layer");
        int k = Int(r, ref offset, name, "k");
        int tokens = Int(r, ref offset, name, "tokens");
        long requests = BinaryPrimitives.ReadInt64LittleEndian(Take(r, 8, ref offset, name, "requests"));
        int entries = Int(r, ref offset, name, "header entries");
        if (layers <= 0 || experts <= 0 || experts > ushort.MaxValue + 1 || tokens < 0 || k < 0 || requests < 0 || requests > int.MaxValue || entries < 0)
            throw new InvalidDataException($"{name}: offset 12..40: implausible header (layers {layers}, experts {experts}, k {k}, tokens {tokens}, requests {requests}, entries {entries})");

        var header = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int e = 0; e < entries; e++)
        {
            int kl = BinaryPrimitives.ReadUInt16LittleEndian(Take(r, 2, ref offset, name, "header key length"));
            string key = Encoding.UTF8.GetString(Take(r, kl, ref offset, name, "header key"));
            int vl = Int(r, ref offset, name, "header value length");
            if (vl < 0) throw new InvalidDataException($"{name}: offset {offset - 4}: negative header value length");
            header[key] = Encoding.UTF8.GetString(Take(r, vl, ref offset, name, $"header value of '{key}'"));
        }

        bool hasWeights = (flags & FlagWeights) != 0, half = (flags & FlagHalf) != 0, fixedK = (flags & FlagFixedK) != 0;
        long steps = (long)tokens * layers;
        if (fixedK && steps * k != requests)
            throw new InvalidDataException($"{name}: header says {requests} requests but {tokens} tokens × {layers} layers × k {k} = {steps * k}");
        var stepStart = new int[steps + 1];
        var ids = new int[requests];
        var weights = hasWeights ? new float[requests] : null;
        int at = 0;
        for (long s = 0; s < steps; s++)
        {
            int n = fixedK ? k : BinaryPrimitives.ReadUInt16LittleEndian(Take(r, 2, ref offset, name, $"count of step {s}"));
            if (at + (long)n > requests) throw new InvalidDataException($"{name}: offset {offset}: step {s} runs past the {requests} requests the header declares");
            byte[] raw = Take(r, 2 * n, ref offset, name, $"expert ids of step {s}");
            for (int i = 0; i < n; i++)
            {
                int id = BinaryPrimitives.ReadUInt16LittleEndian(raw.AsSpan(2 * i));
                if (id >= experts) throw new InvalidDataException($"{name}: offset {offset - 2 * n + 2 * i}: expert id {id} at step {s} is outside 0..{experts - 1}");
                ids[at + i] = id;
            }

            if (weights is not null)
            {
                int size = half ? 2 : 4;
                byte[] wr = Take(r, size * n, ref offset, name, $"weights of step {s}");
                for (int i = 0; i < n; i++)
                    weights[at + i] = half ? (float)BinaryPrimitives.ReadHalfLittleEndian(wr.AsSpan(2 * i)) : BinaryPrimitives.ReadSingleLittleEndian(wr.AsSpan(4 * i));
            }

            at += n;
            stepStart[s + 1] = at;
        }

        if (at != requests) throw new InvalidDataException($"{name}: steps hold {at} requests but the header declares {requests}");
        if (r.BaseStream.ReadByte() >= 0) throw new InvalidDataException($"{name}: offset {offset}: trailing bytes after the last step");
        return new RoutingTrace(layers, experts, stepStart, ids, weights, header);
    }

    private static int Int(BinaryReader r, ref long offset, string name, string field) =>
        BinaryPrimitives.ReadInt32LittleEndian(Take(r, 4, ref offset, name, field));

    private static byte[] Take(BinaryReader r, int count, ref long offset, string name, string field)
    {
        byte[] b = r.ReadBytes(count);
        if (b.Length != count) throw new InvalidDataException($"{name}: offset {offset}: file ends inside {field} (needed {count} bytes, found {b.Length})");
        offset += count;
        return b;
    }
}
