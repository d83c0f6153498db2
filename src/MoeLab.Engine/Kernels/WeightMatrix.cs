using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>
/// A view of a row-major weight matrix in one ggml type: <see cref="Rows"/> output rows of <see cref="Cols"/>
/// weights each (ggml's ne[1] × ne[0]). The memory is owned elsewhere (resident weights, an expert buffer) and
/// must stay pinned while the view is used; views are free to copy.
/// </summary>
public readonly unsafe struct WeightMatrix
{
    public WeightMatrix(GgmlType type, int rows, int cols, byte* data)
    {
        Type = type;
        Rows = rows;
        Cols = cols;
        Data = data;
        RowBytes = (int)GgmlTypeInfo.RowBytes(type, cols);
    }

    public GgmlType Type { get; }

    public int Rows { get; }

    public int Cols { get; }

    public byte* Data { get; }

    public int RowBytes { get; }

    public long TotalBytes => (long)RowBytes * Rows;

    public ReadOnlySpan<byte> Row(int r) => new(Data + (long)r * RowBytes, RowBytes);

    public ReadOnlySpan<byte> All => new(Data, checked((int)TotalBytes));
}
