using System.Buffers.Binary;
using System.Text;

namespace MoeLab.Engine.Gguf;

/// <summary>
/// Writes GGUF v3 files that llama.cpp loads: metadata in insertion order, the tensor table, then each tensor's data
/// aligned to <c>general.alignment</c>. Tensor data is produced by callbacks at write time, so a multi-gigabyte
/// synthesized model streams to disk without being held in memory.
/// </summary>
public sealed class GgufWriter
{
    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly List<(string Name, GgmlType Type, long[] Dims, Action<Stream> Write)> _tensors = [];

    public int Alignment { get; private set; } = GgufFile.DefaultAlignment;

    public GgufWriter Set(string key, GgufValue value)
    {
        int i = _metadata.FindIndex(kv => kv.Key == key);
        if (i >= 0)
        {
            _metadata[i] = new(key, value);
        }
        else
        {
            _metadata.Add(new(key, value));
        }

        if (key == "general.alignment")
        {
            Alignment = checked((int)value.AsInt64());
        }

        return this;
    }

    public GgufWriter Set(string key, string value) => Set(key, GgufValue.Of(value));

    public GgufWriter Set(string key, uint value) => Set(key, GgufValue.Of(value));

    public GgufWriter Set(string key, float value) => Set(key, GgufValue.Of(value));

    public GgufWriter Set(string key, bool value) => Set(key, GgufValue.Of(value));

    /// <summary>Adds a tensor; <paramref name="write"/> must write exactly its byte size when the file is written.</summary>
    public GgufWriter AddTensor(string name, GgmlType type, long[] dims, Action<Stream> write)
    {
        if (_tensors.Any(t => t.Name == name))
        {
            throw new ArgumentException($"tensor '{name}' added twice");
        }

        _tensors.Add((name, type, dims, write));
        return this;
    }

    public GgufWriter AddTensor(string name, GgmlType type, long[] dims, byte[] data) => AddTensor(name, type, dims, s => s.Write(data));

    public static long TensorBytes(GgmlType type, long[] dims) => new GgufTensorInfo("", type, dims, 0, 0).ByteSize;

    public void Write(string path)
    {
        string temp = path + ".partial";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            Write(file);
        }

        // A crash mid-write leaves only the .partial file, never a truncated model under the real name.
        File.Move(temp, path, overwrite: true);
    }

    public void Write(Stream output)
    {
        var w = new BinaryWriter(output, Encoding.UTF8, leaveOpen: true);
        w.Write(GgufFile.Magic);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write((uint)value.Type);
            WriteValue(w, value);
        }

        long offset = 0;
        foreach (var (name, type, dims, _) in _tensors)
        {
            WriteString(w, name);
            w.Write((uint)dims.Length);
            foreach (long d in dims)
            {
                w.Write((ulong)d);
            }

            w.Write((uint)type);
            w.Write((ulong)offset);
            offset = Align(offset + TensorBytes(type, dims));
        }

        w.Flush();
        long position = 0;
        Pad(output, ref position, HeaderLength());
        foreach (var (name, type, dims, write) in _tensors)
        {
            long expected = TensorBytes(type, dims);
            var counting = new CountingStream(output);
            write(counting);
            if (counting.Written != expected)
            {
                throw new InvalidOperationException($"tensor '{name}' wrote {counting.Written} bytes, its shape {string.Join('x', dims)} of {type} needs {expected}");
            }

            long p = expected;
            Pad(output, ref p, 0);
        }

        output.Flush();
    }

    private long HeaderLength()
    {
        using var counter = new CountingStream(Stream.Null);
        var w = new BinaryWriter(counter);
        w.Write(0u);
        w.Write(0u);
        w.Write(0ul);
        w.Write(0ul);
        foreach (var (key, value) in _metadata)
        {
            WriteString(w, key);
            w.Write(0u);
            WriteValue(w, value);
        }

        foreach (var (name, _, dims, _) in _tensors)
        {
            WriteString(w, name);
            w.Write(0u);
            foreach (long _ in dims)
            {
                w.Write(0ul);
            }

            w.Write(0u);
            w.Write(0ul);
        }

        w.Flush();
        return counter.Written;
    }

    private void Pad(Stream output, ref long position, long headerLength)
    {
        long end = headerLength > 0 ? headerLength : position;
        long padded = Align(end);
        if (padded > end)
        {
            output.Write(new byte[padded - end]);
        }

        position = padded;
    }

    private long Align(long x) => (x + Alignment - 1) / Alignment * Alignment;

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValue v)
    {
        if (v.Type == GgufValueType.Array)
        {
            var a = (Array)v.Value;
            w.Write((uint)v.ElementType);
            w.Write((ulong)a.Length);
            foreach (object? item in a)
            {
                WriteScalar(w, v.ElementType, item!);
            }
        }
        else
        {
            WriteScalar(w, v.Type, v.Value);
        }
    }

    private static void WriteScalar(BinaryWriter w, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)value); break;
            case GgufValueType.Int8: w.Write((sbyte)value); break;
            case GgufValueType.UInt16: w.Write((ushort)value); break;
            case GgufValueType.Int16: w.Write((short)value); break;
            case GgufValueType.UInt32: w.Write((uint)value); break;
            case GgufValueType.Int32: w.Write((int)value); break;
            case GgufValueType.Float32: w.Write((float)value); break;
            case GgufValueType.Bool: w.Write((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)value); break;
            case GgufValueType.UInt64: w.Write((ulong)value); break;
            case GgufValueType.Int64: w.Write((long)value); break;
            case GgufValueType.Float64: w.Write((double)value); break;
            default: throw new ArgumentException($"cannot write a value of type {type}");
        }
    }

    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => Written;

        public override long Position { get => Written; set => throw new NotSupportedException(); }

        public override void Flush() => inner.Flush();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            Written += count;
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Written += buffer.Length;
        }
    }
}
