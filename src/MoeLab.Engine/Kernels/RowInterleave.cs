using System.Runtime.InteropServices;
using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>
/// The load-time repack of resident matrices into <see cref="WeightLayout.Interleaved8"/> (the idea of llama.cpp's
/// repacked Q4_0x8, in a layout of our own): for each block column, the eight rows' blocks lie together as one
/// group block, so a row-group kernel reads one contiguous stream with its scales in one load instead of eight
/// strided streams and a gather. Same bytes, same place: group g occupies the bytes rows 8g..8g+7 did.
/// <para>Q4_0 group block (144 bytes): the eight fp16 scales (row j at byte 2j), then four 32-byte vectors whose
/// 4-byte lane j holds row j's quant bytes 4v..4v+3 (v = vector): low nibbles are elements 4v..4v+3, high nibbles
/// 16+4v..16+4v+3, so one vpdpbusd against a broadcast of four activation bytes dots four weights of each row.</para>
/// <para>Q4_K group block (1152 bytes): the eight d (fp16), the eight dmin, then the three 32-bit words of each row's
/// packed 6-bit scales/mins as three vectors (lane j = row j), then per 64-weight chunk c eight 32-byte vectors whose
/// lane j holds row j's quant bytes 32c+4k..32c+4k+3 (low nibbles: sub-block 2c, high: 2c+1).</para>
/// </summary>
public static unsafe class RowInterleave
{
    public const int GroupRows = IRowGroupKernel.GroupRows;

    /// <summary>Types with an interleaved layout and kernel.</summary>
    public static bool Supports(GgmlType type) => type is GgmlType.Q4_0 or GgmlType.Q4_K;

    /// <summary>
    /// Whether the engine interleaves <paramref name="w"/> at load: its type has an interleaved kernel for this
    /// CPU's tier (AVX2 or better; below that the row kernels are faster), and whole row groups.
    /// </summary>
    public static bool Worthwhile(in WeightMatrix w) =>
        KernelIsaInfo.Best >= KernelIsa.Avx2 && w.Layout == WeightLayout.Rows && Supports(w.Type) && w.Rows % GroupRows == 0;

    /// <summary>Interleaves when <see cref="Worthwhile"/>, in place; returns the view to use from now on.</summary>
    public static WeightMatrix InterleaveIfWorthwhile(in WeightMatrix w) => Worthwhile(w) ? Interleave(w) : w;

    /// <summary>Rewrites <paramref name="w"/>'s bytes in place as <see cref="WeightLayout.Interleaved8"/> and returns that view.</summary>
    public static WeightMatrix Interleave(in WeightMatrix w)
    {
        if (w.Layout != WeightLayout.Rows) throw new ArgumentException($"matrix is already {w.Layout}", nameof(w));
        if (!Supports(w.Type)) throw new NotSupportedException($"no interleaved layout for ggml type {w.Type}");
        if (w.Rows % GroupRows != 0) throw new ArgumentException($"{w.Rows} rows are not whole groups of {GroupRows}", nameof(w));
        long groupBytes = (long)GroupRows * w.RowBytes;
        byte* scratch = (byte*)NativeMemory.Alloc((nuint)groupBytes);
        try
        {
            for (long g = 0; g < w.Rows / GroupRows; g++)
            {
                byte* group = w.Data + (g * groupBytes);
                Buffer.MemoryCopy(group, scratch, groupBytes, groupBytes);
                InterleaveGroup(w.Type, scratch, w.RowBytes, w.Cols, group);
            }
        }
        finally
        {
            NativeMemory.Free(scratch);
        }

        return new WeightMatrix(w.Type, w.Rows, w.Cols, w.Data, WeightLayout.Interleaved8);
    }

    /// <summary>Eight consecutive GGUF rows at <paramref name="rows"/> → one interleaved group at <paramref name="dst"/>.</summary>
    internal static void InterleaveGroup(GgmlType type, byte* rows, int rowBytes, int cols, byte* dst) =>
        Move(type, rows, rowBytes, cols, dst, toGroup: true);

    /// <summary>One interleaved group → its eight GGUF rows (for the tiers without an interleaved kernel, and tests).</summary>
    internal static void DeinterleaveGroup(GgmlType type, byte* group, int rowBytes, int cols, byte* rows) =>
        Move(type, rows, rowBytes, cols, group, toGroup: false);

    private static void Move(GgmlType type, byte* rows, int rowBytes, int cols, byte* group, bool toGroup)
    {
        switch (type)
        {
            case GgmlType.Q4_0:
                for (int b = 0; b < cols / 32; b++)
                {
                    byte* gb = group + (144 * b);
                    for (int j = 0; j < GroupRows; j++)
                    {
                        byte* rb = rows + (j * rowBytes) + (18 * b);
                        Copy(rb, gb + (2 * j), 2, toGroup);
                        for (int v = 0; v < 4; v++) Copy(rb + 2 + (4 * v), gb + 16 + (32 * v) + (4 * j), 4, toGroup);
                    }
                }

                break;
            case GgmlType.Q4_K:
                for (int b = 0; b < cols / 256; b++)
                {
                    byte* gb = group + (1152 * b);
                    for (int j = 0; j < GroupRows; j++)
                    {
                        byte* rb = rows + (j * rowBytes) + (144 * b);
                        Copy(rb, gb + (2 * j), 2, toGroup);
                        Copy(rb + 2, gb + 16 + (2 * j), 2, toGroup);
                        for (int w = 0; w < 3; w++) Copy(rb + 4 + (4 * w), gb + 32 + (32 * w) + (4 * j), 4, toGroup);
                        for (int c = 0; c < 4; c++)
                        {
                            for (int k = 0; k < 8; k++) Copy(rb + 16 + (32 * c) + (4 * k), gb + 128 + (256 * c) + (32 * k) + (4 * j), 4, toGroup);
                        }
                    }
                }

                break;
            default:
                throw new NotSupportedException($"no interleaved layout for ggml type {type}");
        }
    }

    private static void Copy(byte* row, byte* group, int n, bool toGroup)
    {
        if (toGroup) Buffer.MemoryCopy(row, group, n, n);
        else Buffer.MemoryCopy(group, row, n, n);
    }
}
