using System.Buffers.Binary;
using System.Text;

namespace MoeLab.Engine.Gguf;

/// <summary>
/// The header, metadata and tensor table of a GGUF v2/v3 file (tensor data is not read here: the model reads the
/// dense tensors it keeps resident, and the expert store reads expert slices on demand).
/// Every malformed field raises <see cref="GgufFormatException"/> naming the field and its byte offset.
/// </summary>
public sealed class GgufFile
{
    public const uint Magic = 0x46554747; // "GGUF" little-endian
    public const int DefaultAlignment = 32;

    private readonly Dictionary<string, GgufValue> _metadata;
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName;

    private GgufFile(string path, uint version, long fileLength, List<KeyValuePair<string, GgufValue>> metadata, List<GgufTensorInfo> tensors, int alignment, long dataOffset)
    {
        Path = path;
        Version = version;
        FileLength = fileLength;
        MetadataInOrder = metadata;
        _metadata = new Dictionary<string, GgufValue>(metadata, StringComparer.Ordinal);
        Tensors = tensors;
        _tensorsByName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        Alignment = alignment;
        DataOffset = dataOffset;
    }

    public string Path { get; }

    public uint Version { get; }

    public long FileLength { get; }

    public int Alignment { get; }

    /// <summary>Absolute offset of the tensor data section.</summary>
    public long DataOffset { get; }

    public IReadOnlyList<KeyValuePair<string, GgufValue>> MetadataInOrder { get; }

    public IReadOnlyDictionary<string, GgufValue> Metadata => _metadata;

    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    public string Architecture => GetString("general.architecture");

    public GgufTensorInfo? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    public GgufTensorInfo Tensor(string name) => FindTensor(name) ?? throw new GgufFormatException($"{Path}: tensor '{name}' is missing");

    public bool Has(string key) => _metadata.ContainsKey(key);

    public GgufValue Get(string key) => _metadata.TryGetValue(key, out var v) ? v : throw new GgufFormatException($"{Path}: metadata key '{key}' is missing");

    public string GetString(string key) => Get(key).Value as string ?? throw new GgufFormatException($"{Path}: metadata key '{key}' is {Get(key).Type}, expected a string");

    public string? GetStringOrNull(string key) => _metadata.TryGetValue(key, out var v) ? v.Value as string : null;

    public long GetInt(string key) => Typed(key, v => v.AsInt64());

    public long GetInt(string key, long fallback) => _metadata.ContainsKey(key) ? GetInt(key) : fallback;

    public double GetDouble(string key) => Typed(key, v => v.AsDouble());

    public double GetDouble(string key, double fallback) => _metadata.ContainsKey(key) ? GetDouble(key) : fallback;

    public bool GetBool(string key, bool fallback) => _metadata.TryGetValue(key, out var v) ? v.Value is bool b ? b : v.AsInt64() != 0 : fallback;

    public T[]? GetArray<T>(string key) => _metadata.TryGetValue(key, out var v) ? v.Value as T[] ?? throw new GgufFormatException($"{Path}: metadata key '{key}' holds {v.Type}/{v.ElementType}, expected an array of {typeof(T).Name}") : null;

    private T Typed<T>(string key, Func<GgufValue, T> convert)
    {
        var v = Get(key);
        try
        {
            return convert(v);
        }
        catch (InvalidDataException e)
        {
            throw new GgufFormatException($"{Path}: metadata key '{key}': {e.Message}");
        }
    }

    public static GgufFile Open(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        return Read(stream, path);
    }

    public static GgufFile Read(Stream stream, string path)
    {
        var r = new Reader(stream, path);
        uint magic = r.U32("magic");
        if (magic != Magic)
        {
            throw new GgufFormatException($"{path}: not a GGUF file (magic at offset 0 is 0x{magic:X8}, expected 0x{Magic:X8} \"GGUF\")");
        }

        uint version = r.U32("version");
        if (version is not (2 or 3))
        {
            throw new GgufFormatException($"{path}: GGUF version {version} at offset 4 is not supported (2 and 3 are)");
        }

        long tensorCount = r.Count("tensor_count", 8 + 4 + 8 + 4 + 8);
        long kvCount = r.Count("metadata_kv_count", 8 + 4);

        var metadata = new List<KeyValuePair<string, GgufValue>>((int)Math.Min(kvCount, 1024));
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (long i = 0; i < kvCount; i++)
        {
            long at = r.Position;
            string key = r.String($"metadata[{i}].key");
            if (!seen.Add(key))
            {
                throw new GgufFormatException($"{path}: metadata key '{key}' at offset {at} appears twice");
            }

            var type = (GgufValueType)r.U32($"metadata '{key}' type");
            metadata.Add(new(key, r.Value(type, $"metadata '{key}'")));
        }

        int alignment = DefaultAlignment;
        var alignValue = metadata.FirstOrDefault(kv => kv.Key == "general.alignment").Value;
        if (alignValue is not null)
        {
            long a = alignValue.IsInteger ? alignValue.AsInt64() : -1;
            if (a <= 0 || a > 1 << 20 || (a & (a - 1)) != 0)
            {
                throw new GgufFormatException($"{path}: general.alignment = {alignValue} is not a power of two between 1 and 1 MiB");
            }

            alignment = (int)a;
        }

        var infos = new List<(string Name, GgmlType Type, long[] Dims, long Offset, long At)>((int)Math.Min(tensorCount, 1 << 16));
        for (long i = 0; i < tensorCount; i++)
        {
            long at = r.Position;
            string name = r.String($"tensor[{i}].name");
            uint nDims = r.U32($"tensor '{name}' n_dims");
            if (nDims is 0 or > 4)
            {
                throw new GgufFormatException($"{path}: tensor '{name}' at offset {at} has {nDims} dimensions (1 to 4 allowed)");
            }

            var dims = new long[nDims];
            for (int d = 0; d < nDims; d++)
            {
                ulong ne = r.U64($"tensor '{name}' ne[{d}]");
                if (ne == 0 || ne > 1UL << 40)
                {
                    throw new GgufFormatException($"{path}: tensor '{name}' dimension ne[{d}] = {ne} is out of range");
                }

                dims[d] = (long)ne;
            }

            long typeAt = r.Position;
            uint rawType = r.U32($"tensor '{name}' type");
            if (!GgmlTypeInfo.IsKnown(rawType))
            {
                throw new GgufFormatException($"{path}: tensor '{name}' has unknown ggml type {rawType} (offset {typeAt})");
            }

            var type = (GgmlType)rawType;
            if (dims[0] % GgmlTypeInfo.BlockSize(type) != 0)
            {
                throw new GgufFormatException($"{path}: tensor '{name}' row length ne[0] = {dims[0]} is not a multiple of {type}'s block size {GgmlTypeInfo.BlockSize(type)}");
            }

            ulong offset = r.U64($"tensor '{name}' offset");
            if (offset % (ulong)alignment != 0)
            {
                throw new GgufFormatException($"{path}: tensor '{name}' data offset {offset} is not a multiple of the alignment {alignment}");
            }

            infos.Add((name, type, dims, (long)Math.Min(offset, long.MaxValue), at));
        }

        long dataOffset = (r.Position + alignment - 1) / alignment * alignment;
        var tensors = new List<GgufTensorInfo>(infos.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, type, dims, offset, at) in infos)
        {
            if (!names.Add(name))
            {
                throw new GgufFormatException($"{path}: tensor name '{name}' (offset {at}) appears twice");
            }

            var t = new GgufTensorInfo(name, type, dims, offset, dataOffset + offset);
            long size;
            try
            {
                size = checked(t.ByteSize);
            }
            catch (OverflowException)
            {
                throw new GgufFormatException($"{path}: tensor '{name}' shape {t.ShapeText} is absurdly large");
            }

            if (t.AbsoluteOffset > r.Length || size > r.Length - t.AbsoluteOffset)
            {
                throw new GgufFormatException($"{path}: tensor '{name}' data [{t.AbsoluteOffset}, {t.AbsoluteOffset + size}) lies beyond the end of the file ({r.Length} bytes): the file is truncated or the tensor table is corrupt");
            }

            tensors.Add(t);
        }

        return new GgufFile(path, version, r.Length, metadata, tensors, alignment, dataOffset);
    }

    /// <summary>Bounds-checked little-endian reads that name the field being read when the file ends or lies.</summary>
    private sealed class Reader(Stream stream, string path)
    {
        private readonly byte[] _scratch = new byte[8];

        public long Length { get; } = stream.Length;

        public long Position { get; private set; }

        public uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4, field));

        public ulong U64(string field) => BinaryPrimitives.ReadUInt64LittleEndian(Bytes(8, field));

        /// <summary>A count of items that each take at least <paramref name="minItemBytes"/>: rejects counts the rest of the file cannot hold.</summary>
        public long Count(string field, long minItemBytes)
        {
            long at = Position;
            ulong n = U64(field);
            if (n > (ulong)Math.Max(0, Length - Position) / (ulong)Math.Max(1, minItemBytes))
            {
                throw new GgufFormatException($"{path}: {field} = {n} at offset {at} is larger than the rest of the file could hold");
            }

            return (long)n;
        }

        public string String(string field)
        {
            long at = Position;
            ulong n = U64(field + " length");
            if (n > (ulong)(Length - Position))
            {
                throw new GgufFormatException($"{path}: {field} at offset {at} claims {n} bytes but only {Length - Position} remain");
            }

            if (n == 0)
            {
                return "";
            }

            byte[] buffer = n <= 256 ? _stringScratch : new byte[n];
            Fill(buffer.AsSpan(0, (int)n), field);
            try
            {
                return StrictUtf8.GetString(buffer, 0, (int)n);
            }
            catch (DecoderFallbackException)
            {
                throw new GgufFormatException($"{path}: {field} at offset {at} is not valid UTF-8");
            }
        }

        private readonly byte[] _stringScratch = new byte[256];

        private static readonly UTF8Encoding StrictUtf8 = new(false, true);

        public GgufValue Value(GgufValueType type, string field)
        {
            long at = Position - 4;
            switch (type)
            {
                case GgufValueType.Array:
                    var elementType = (GgufValueType)U32(field + " element type");
                    if (elementType == GgufValueType.Array)
                    {
                        throw new GgufFormatException($"{path}: {field} (offset {at}) is an array of arrays, which this reader does not support");
                    }

                    long n = Count(field + " element count", MinBytes(elementType, field, at));
                    return new GgufValue(GgufValueType.Array, ReadArray(elementType, n, field), elementType);
                default:
                    return new GgufValue(type, Scalar(type, field, at));
            }
        }

        private long MinBytes(GgufValueType t, string field, long at) => t switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            _ => throw new GgufFormatException($"{path}: {field} at offset {at} has unknown value type {(uint)t}"),
        };

        private object Scalar(GgufValueType type, string field, long at) => type switch
        {
            GgufValueType.UInt8 => Bytes(1, field)[0],
            GgufValueType.Int8 => (sbyte)Bytes(1, field)[0],
            GgufValueType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2, field)),
            GgufValueType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(Bytes(2, field)),
            GgufValueType.UInt32 => U32(field),
            GgufValueType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(Bytes(4, field)),
            GgufValueType.Float32 => BinaryPrimitives.ReadSingleLittleEndian(Bytes(4, field)),
            GgufValueType.Bool => Bytes(1, field)[0] switch
            {
                0 => false,
                1 => true,
                var b => throw new GgufFormatException($"{path}: {field} at offset {Position - 1} is a bool with value {b}"),
            },
            GgufValueType.String => String(field),
            GgufValueType.UInt64 => U64(field),
            GgufValueType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(Bytes(8, field)),
            GgufValueType.Float64 => BinaryPrimitives.ReadDoubleLittleEndian(Bytes(8, field)),
            _ => throw new GgufFormatException($"{path}: {field} at offset {at} has unknown value type {(uint)type}"),
        };

        private Array ReadArray(GgufValueType t, long n, string field)
        {
            int count = (int)n; // Count() bounded n by the file length, and no GGUF array approaches 2^31 elements.
            switch (t)
            {
                case GgufValueType.String:
                    var strings = new string[count];
                    for (int i = 0; i < count; i++)
                    {
                        strings[i] = String($"{field}[{i}]");
                    }

                    return strings;
                case GgufValueType.Int32:
                    return Primitive<int>(count, 4, field);
                case GgufValueType.UInt32:
                    return Primitive<uint>(count, 4, field);
                case GgufValueType.Float32:
                    return Primitive<float>(count, 4, field);
                case GgufValueType.UInt8:
                    return Primitive<byte>(count, 1, field);
                case GgufValueType.Int8:
                    return Primitive<sbyte>(count, 1, field);
                case GgufValueType.UInt16:
                    return Primitive<ushort>(count, 2, field);
                case GgufValueType.Int16:
                    return Primitive<short>(count, 2, field);
                case GgufValueType.UInt64:
                    return Primitive<ulong>(count, 8, field);
                case GgufValueType.Int64:
                    return Primitive<long>(count, 8, field);
                case GgufValueType.Float64:
                    return Primitive<double>(count, 8, field);
                case GgufValueType.Bool:
                    var raw = Primitive<byte>(count, 1, field);
                    return Array.ConvertAll(raw, b => b != 0);
                default:
                    throw new GgufFormatException($"{path}: {field} has unknown element type {(uint)t}");
            }
        }

        private T[] Primitive<T>(int count, int size, string field)
            where T : unmanaged
        {
            var result = new T[count];
            Fill(System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan()), field);
            if (!BitConverter.IsLittleEndian)
            {
                throw new PlatformNotSupportedException("big-endian hosts are not supported");
            }

            _ = size;
            return result;
        }

        private ReadOnlySpan<byte> Bytes(int n, string field)
        {
            Fill(_scratch.AsSpan(0, n), field);
            return _scratch.AsSpan(0, n);
        }

        private void Fill(Span<byte> dst, string field)
        {
            long at = Position;
            int got = 0;
            while (got < dst.Length)
            {
                int k = stream.Read(dst[got..]);
                if (k == 0)
                {
                    throw new GgufFormatException($"{path}: file ends at offset {at + got} while reading {field} ({dst.Length} bytes at offset {at}): truncated header");
                }

                got += k;
            }

            Position += dst.Length;
        }
    }
}

/// <summary>A GGUF file is malformed; the message names the field and byte offset.</summary>
public sealed class GgufFormatException(string message) : IOException(message);
