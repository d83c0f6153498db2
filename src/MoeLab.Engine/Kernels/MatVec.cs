using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>Single-threaded matrix-vector product over a row range: y[r] = dot(row r of w, x).</summary>
public static unsafe class MatVec
{
    public static bool Supports(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16
        or GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.Q6_K or GgmlType.Q2_K or GgmlType.Q3_K
        or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q5_K;

    /// <summary>Computes y[r] for rowStart ≤ r &lt; rowEnd; <paramref name="y"/> is indexed by absolute row.</summary>
    public static void Multiply(in WeightMatrix w, QuantizedVector x, Span<float> y, int rowStart, int rowEnd) =>
        Multiply(KernelIsaInfo.Best, w, x, y, rowStart, rowEnd);

    internal static void Multiply(KernelIsa isa, in WeightMatrix w, QuantizedVector x, Span<float> y, int rowStart, int rowEnd)
    {
        Validate(w, x, y.Length);
        if ((uint)rowStart > (uint)rowEnd || rowEnd > w.Rows)
            throw new ArgumentOutOfRangeException(nameof(rowEnd), $"row range [{rowStart}, {rowEnd}) outside 0..{w.Rows}");
        var a = x.Prepare(w.Type);
        fixed (float* py = y) Rows(isa, w, a, py, rowStart, rowEnd);
    }

    internal static void Validate(in WeightMatrix w, QuantizedVector x, int yLength)
    {
        if (!Supports(w.Type)) throw new NotSupportedException($"no matvec kernel for ggml type {w.Type}");
        if (w.Cols != x.Length) throw new ArgumentException($"matrix has {w.Cols} columns but the vector has {x.Length} elements", nameof(x));
        if (yLength < w.Rows) throw new ArgumentException($"output holds {yLength} elements, matrix has {w.Rows} rows");
    }

    /// <summary>The unchecked row loop; x must already be prepared for w's type.</summary>
    internal static void Rows(KernelIsa isa, in WeightMatrix w, in Activations a, float* y, int r0, int r1)
    {
        if (w.Layout == WeightLayout.Interleaved8)
        {
            InterleavedRows(isa, w, a, y, r0, r1);
            return;
        }

        if (isa >= KernelIsa.AvxVnni) Rows<WithVnni>(w, a, y, r0, r1);
        else if (isa >= KernelIsa.Avx2) Rows<WithoutVnni>(w, a, y, r0, r1);
        else if (isa >= KernelIsa.Vector128) PortableRows(w, a, y, r0, r1);
        else ScalarRows(w, a, y, r0, r1);
    }

    private static void Rows<V>(in WeightMatrix w, in Activations a, float* y, int r0, int r1) where V : struct, IVnniMode
    {
        switch (w.Type)
        {
            case GgmlType.F32: Loop<ScalarKernels.F32Vector>(w, a, y, r0, r1); break;
            case GgmlType.F16: Loop<Avx2Kernels<V>.F16>(w, a, y, r0, r1); break;
            case GgmlType.BF16: Loop<Avx2Kernels<V>.BF16>(w, a, y, r0, r1); break;
            case GgmlType.Q8_0: GroupLoop<Avx2Kernels<V>.Q8_0>(w, a, y, r0, r1); break;
            case GgmlType.Q4_0: GroupLoop<Avx2Kernels<V>.Q4_0>(w, a, y, r0, r1); break;
            case GgmlType.Q4_K: Loop<Avx2Kernels<V>.Q4_K>(w, a, y, r0, r1); break;
            case GgmlType.Q6_K: Loop<Avx2Kernels<V>.Q6_K>(w, a, y, r0, r1); break;
            case GgmlType.Q2_K: Loop<Avx2Kernels<V>.Q2_K>(w, a, y, r0, r1); break;
            case GgmlType.Q3_K: Loop<Avx2Kernels<V>.Q3_K>(w, a, y, r0, r1); break;
            case GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q5_K: Q5PortableKernels.Rows(w, a, y, r0, r1); break;
            default: throw new NotSupportedException($"no matvec kernel for ggml type {w.Type}");
        }
    }

    /// <summary>Rows of an interleaved matrix: whole groups straight into y, a group cut by the range via a scratch.</summary>
    private static void InterleavedRows(KernelIsa isa, in WeightMatrix w, in Activations a, float* y, int r0, int r1)
    {
        const int G = RowInterleave.GroupRows;
        float* part = stackalloc float[G];
        long groupBytes = (long)G * w.RowBytes;
        for (int g = r0 / G; g * G < r1; g++)
        {
            int lo = g * G;
            bool whole = lo >= r0 && lo + G <= r1;
            float* dst = whole ? y + lo : part;
            InterleavedGroup(isa, w, a, w.Data + (g * groupBytes), dst);
            if (!whole)
            {
                for (int r = Math.Max(lo, r0); r < Math.Min(lo + G, r1); r++) y[r] = part[r - lo];
            }
        }
    }

    private static void InterleavedGroup(KernelIsa isa, in WeightMatrix w, in Activations a, byte* group, float* y)
    {
        if (isa >= KernelIsa.AvxVnni) InterleavedGroup<WithVnni>(w, a, group, y);
        else if (isa >= KernelIsa.Avx2) InterleavedGroup<WithoutVnni>(w, a, group, y);
        else
        {
            // tiers without an interleaved kernel (tests force them; the engine does not interleave there): restore
            // the group's rows and use the row kernels
            const int G = RowInterleave.GroupRows;
            byte[] rented = System.Buffers.ArrayPool<byte>.Shared.Rent(G * w.RowBytes);
            fixed (byte* rows = rented)
            {
                RowInterleave.DeinterleaveGroup(w.Type, group, w.RowBytes, w.Cols, rows);
                Rows(isa, new WeightMatrix(w.Type, G, w.Cols, rows), a, y, 0, G);
            }

            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static void InterleavedGroup<V>(in WeightMatrix w, in Activations a, byte* group, float* y) where V : struct, IVnniMode
    {
        switch (w.Type)
        {
            case GgmlType.Q4_0: Avx2Kernels<V>.Q4_0x8.DotGroup(group, a, w.Cols, y); break;
            case GgmlType.Q4_K: Avx2Kernels<V>.Q4_Kx8.DotGroup(group, a, w.Cols, y); break;
            default: throw new NotSupportedException($"no interleaved kernel for ggml type {w.Type}");
        }
    }

    private static void PortableRows(in WeightMatrix w, in Activations a, float* y, int r0, int r1)
    {
        switch (w.Type)
        {
            case GgmlType.F32: Loop<ScalarKernels.F32Vector>(w, a, y, r0, r1); break;
            case GgmlType.F16: Loop<PortableKernels.F16>(w, a, y, r0, r1); break;
            case GgmlType.BF16: Loop<PortableKernels.BF16>(w, a, y, r0, r1); break;
            case GgmlType.Q8_0: Loop<PortableKernels.Q8_0>(w, a, y, r0, r1); break;
            case GgmlType.Q4_0: Loop<PortableKernels.Q4_0>(w, a, y, r0, r1); break;
            case GgmlType.Q4_K: Loop<PortableKernels.Q4_K>(w, a, y, r0, r1); break;
            case GgmlType.Q6_K: Loop<PortableKernels.Q6_K>(w, a, y, r0, r1); break;
            case GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q5_K: Q5PortableKernels.Rows(w, a, y, r0, r1); break;
            default: ScalarRows(w, a, y, r0, r1); break; // Q2_K, Q3_K: precision copies, scalar is enough here
        }
    }

    private static void ScalarRows(in WeightMatrix w, in Activations a, float* y, int r0, int r1)
    {
        switch (w.Type)
        {
            case GgmlType.F32: Loop<ScalarKernels.F32>(w, a, y, r0, r1); break;
            case GgmlType.F16: Loop<ScalarKernels.F16>(w, a, y, r0, r1); break;
            case GgmlType.BF16: Loop<ScalarKernels.BF16>(w, a, y, r0, r1); break;
            case GgmlType.Q8_0: Loop<ScalarKernels.Q8_0>(w, a, y, r0, r1); break;
            case GgmlType.Q4_0: Loop<ScalarKernels.Q4_0>(w, a, y, r0, r1); break;
            case GgmlType.Q4_K: Loop<ScalarKernels.Q4_K>(w, a, y, r0, r1); break;
            case GgmlType.Q6_K: Loop<ScalarKernels.Q6_K>(w, a, y, r0, r1); break;
            case GgmlType.Q2_K: Loop<ScalarKernels.Q2_K>(w, a, y, r0, r1); break;
            case GgmlType.Q3_K: Loop<ScalarKernels.Q3_K>(w, a, y, r0, r1); break;
            case GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q5_K: Q5ScalarKernels.Rows(w, a, y, r0, r1); break;
            default: throw new NotSupportedException($"no matvec kernel for ggml type {w.Type}");
        }
    }

    internal static void Loop<K>(in WeightMatrix w, in Activations a, float* y, int r0, int r1) where K : struct, IRowKernel
    {
        byte* data = w.Data;
        long stride = w.RowBytes;
        int cols = w.Cols;
        for (int r = r0; r < r1; r++) y[r] = K.Dot(data + r * stride, a, cols);
    }

    private static void GroupLoop<K>(in WeightMatrix w, in Activations a, float* y, int r0, int r1) where K : struct, IRowGroupKernel
    {
        byte* data = w.Data;
        long stride = w.RowBytes;
        int cols = w.Cols, r = r0;
        for (; r + IRowGroupKernel.GroupRows <= r1; r += IRowGroupKernel.GroupRows) K.DotGroup(data + r * stride, w.RowBytes, a, cols, y + r);
        for (; r < r1; r++) y[r] = K.Dot(data + r * stride, a, cols);
    }
}
