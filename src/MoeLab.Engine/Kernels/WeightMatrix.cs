using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>How a matrix's quant blocks are ordered in memory.</summary>
public enum WeightLayout
{
    /// <summary>The GGUF order: each row's blocks one after another.</summary>
    Rows = 0,

    /// <summary>
    /// Eight consecutive rows' blocks interleaved block by block (<see cref="RowInterleave"/>): a row group is one
    /// contiguous stream, in the same bytes the eight rows occupied. Made at load for resident matrices only.
    /// </summary>
    Interleaved8 = 1,
}

/// <summary>
/// A view of a row-major weight matrix in one ggml type: <see cref="Rows"/> output rows of <see cref="Cols"/>
/// weights each (ggml's ne[1] × ne[0]). The memory is owned elsewhere (resident weights, an expert buffer) and
/// must stay pinned while the view is used; views are free to copy.
/// </summary>
public readonly unsafe struct WeightMatrix
{
    public WeightMatrix(GgmlType type, int rows, int cols, byte* data, WeightLayout layout = WeightLayout.Rows)
    {
        Type = type;
        Rows = rows;
        Cols = cols;
        Data = data;
        RowBytes = (int)GgmlTypeInfo.RowBytes(type, cols);
        Layout = layout;
    }

    public GgmlType Type { get; }

    public int Rows { get; }

    public int Cols { get; }

    public byte* Data { get; }

    /// <summary>Bytes per row; an interleaved group of eight rows takes eight times this.</summary>
    public int RowBytes { get; }

    public WeightLayout Layout { get; }

    public long TotalBytes => (long)RowBytes * Rows;

    /// <summary>One row's bytes in GGUF layout (only for <see cref="WeightLayout.Rows"/>).</summary>
    public ReadOnlySpan<byte> Row(int r) => Layout == WeightLayout.Rows
        ? new(Data + (long)r * RowBytes, RowBytes)
        : throw new InvalidOperationException($"row {r} of an {Layout} matrix is not contiguous; look rows up in a matrix kept in GGUF row layout");

    public ReadOnlySpan<byte> All => new(Data, checked((int)TotalBytes));
}
