using System.Globalization;

namespace MoeLab.Engine.Gguf;

/// <summary>GGUF metadata value types, numbered as the format stores them.</summary>
public enum GgufValueType : uint
{
    UInt8 = 0,
    Int8 = 1,
    UInt16 = 2,
    Int16 = 3,
    UInt32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    UInt64 = 10,
    Int64 = 11,
    Float64 = 12,
}

/// <summary>
/// One metadata value. Scalars are boxed (metadata is read once per load, never on a hot path); arrays keep their
/// element type and hold a typed CLR array (string[], int[], float[], …) so a 150k-entry vocabulary stays compact.
/// </summary>
public sealed class GgufValue
{
    public GgufValue(GgufValueType type, object value, GgufValueType elementType = GgufValueType.UInt8)
    {
        Type = type;
        Value = value;
        ElementType = elementType;
    }

    public GgufValueType Type { get; }

    /// <summary>For arrays, the type of their elements.</summary>
    public GgufValueType ElementType { get; }

    public object Value { get; }

    public bool IsInteger => Type is GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.UInt16 or GgufValueType.Int16
        or GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.UInt64 or GgufValueType.Int64;

    public long AsInt64() => IsInteger ? Convert.ToInt64(Value, CultureInfo.InvariantCulture)
        : Type == GgufValueType.Bool ? ((bool)Value ? 1 : 0)
        : throw new InvalidDataException($"expected an integer, found {Type}");

    public double AsDouble() => Type switch
    {
        GgufValueType.Float32 => (float)Value,
        GgufValueType.Float64 => (double)Value,
        _ when IsInteger => AsInt64(),
        _ => throw new InvalidDataException($"expected a number, found {Type}"),
    };

    public override string ToString() => Value switch
    {
        string s => s.Length > 80 ? s[..77] + "..." : s,
        Array a => $"[{ElementType} × {a.Length}]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => Value.ToString() ?? "",
    };

    public static GgufValue Of(string s) => new(GgufValueType.String, s);

    public static GgufValue Of(uint v) => new(GgufValueType.UInt32, v);

    public static GgufValue Of(int v) => new(GgufValueType.Int32, v);

    public static GgufValue Of(float v) => new(GgufValueType.Float32, v);

    public static GgufValue Of(bool v) => new(GgufValueType.Bool, v);

    public static GgufValue Of(ulong v) => new(GgufValueType.UInt64, v);

    public static GgufValue Of(string[] v) => new(GgufValueType.Array, v, GgufValueType.String);

    public static GgufValue Of(int[] v) => new(GgufValueType.Array, v, GgufValueType.Int32);

    public static GgufValue Of(uint[] v) => new(GgufValueType.Array, v, GgufValueType.UInt32);

    public static GgufValue Of(float[] v) => new(GgufValueType.Array, v, GgufValueType.Float32);

    public static GgufValue Of(bool[] v) => new(GgufValueType.Array, v, GgufValueType.Bool);
}

/// <summary>One tensor's entry in the tensor table: name, ggml type, dimensions (ne[0] first) and where its data lies.</summary>
public sealed record GgufTensorInfo(string Name, GgmlType Type, long[] Dims, long RelativeOffset, long AbsoluteOffset)
{
    public long ElementCount
    {
        get
        {
            long n = 1;
            foreach (long d in Dims)
            {
                n *= d;
            }

            return n;
        }
    }

    /// <summary>Bytes of the tensor's data: rows of ne[0] elements in blocks.</summary>
    public long ByteSize => GgmlTypeInfo.RowBytes(Type, Dims[0]) * (ElementCount / Dims[0]);

    public long Dim(int i) => i < Dims.Length ? Dims[i] : 1;

    public string ShapeText => "{" + string.Join(", ", Dims) + "}";
}
