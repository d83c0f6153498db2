namespace MoeLab.Engine.Kernels;

/// <summary>
/// Y_i = W·x_i for several activation vectors at once (a prompt chunk): the rows are split into small blocks and each
/// block is dotted with every x_i while it is in cache, so W is read from memory once per call instead of once per
/// vector. Each row meets each vector through the same per-type kernel as <see cref="ComputePool.MatVec"/>, so every
/// y_i is bit-identical to a single-vector matvec.
/// </summary>
public static unsafe class BatchMatVec
{
    /// <summary>Most vectors per call (the prepared forms live on the stack).</summary>
    public const int MaxVectors = 128;

    // Rows per block: a multiple of the kernels' row group; 16 rows of a 4096-wide Q4_0 matrix are 36 KiB, about L1/L2.
    private static int BlockRows => 2 * IRowGroupKernel.GroupRows;

    /// <summary>
    /// For i &lt; <paramref name="count"/>: y[i·<paramref name="yStride"/> ..][..w.Rows] = w·x[i].
    /// </summary>
    public static void Multiply(this ComputePool pool, in WeightMatrix w, ReadOnlySpan<QuantizedVector> x, int count, Span<float> y, int yStride) =>
        Multiply2(pool, w, default, x, count, y, yStride, default, 0);

    /// <summary>Two matrices over the same vectors in one dispatch (an expert's gate and up projections).</summary>
    public static void Multiply2(
        this ComputePool pool, in WeightMatrix a, in WeightMatrix b, ReadOnlySpan<QuantizedVector> x, int count,
        Span<float> ya, int yaStride, Span<float> yb, int ybStride)
    {
        if ((uint)count > (uint)Math.Min(x.Length, MaxVectors)) throw new ArgumentOutOfRangeException(nameof(count), count, $"at most {Math.Min(x.Length, MaxVectors)} vectors");
        if (count == 0) return;
        bool two = b.Data != null;
        CheckOutput(a, ya, yaStride, count);
        if (two) CheckOutput(b, yb, ybStride, count);
        Activations* xa = stackalloc Activations[count];
        Activations* xb = stackalloc Activations[two ? count : 1];
        for (int i = 0; i < count; i++)
        {
            MatVec.Validate(a, x[i], yaStride);
            xa[i] = x[i].Prepare(a.Type);
            if (two)
            {
                MatVec.Validate(b, x[i], ybStride);
                xb[i] = x[i].Prepare(b.Type);
            }
        }

        fixed (float* pa = ya)
        fixed (float* pb = yb)
        {
            int blocksA = (a.Rows + BlockRows - 1) / BlockRows;
            int blocksB = two ? (b.Rows + BlockRows - 1) / BlockRows : 0;
            var body = new Body
            {
                Isa = pool.Isa, A = a, B = b, BlocksA = blocksA, XA = xa, XB = xb, YA = pa, YB = pb,
                StrideA = yaStride, StrideB = ybStride, Count = count,
            };
            pool.For(blocksA + blocksB, body);
        }
    }

    private static void CheckOutput(in WeightMatrix w, Span<float> y, int stride, int count)
    {
        if (stride < w.Rows || (long)stride * (count - 1) + w.Rows > y.Length)
        {
            throw new ArgumentException($"output of {y.Length} floats with stride {stride} cannot hold {count} rows of {w.Rows}");
        }
    }

    private struct Body : IParallelBody
    {
        public KernelIsa Isa;
        public WeightMatrix A, B;
        public int BlocksA, StrideA, StrideB, Count;
        public Activations* XA, XB;
        public float* YA, YB;

        public readonly void Execute(int start, int end)
        {
            for (int block = start; block < end; block++)
            {
                bool inA = block < BlocksA;
                var w = inA ? A : B;
                int r0 = (inA ? block : block - BlocksA) * BlockRows, r1 = Math.Min(r0 + BlockRows, w.Rows);
                Activations* x = inA ? XA : XB;
                float* y = inA ? YA : YB;
                long stride = inA ? StrideA : StrideB;
                for (int i = 0; i < Count; i++)
                {
                    MatVec.Rows(Isa, w, x[i], y + (i * stride), r0, r1);
                }
            }
        }
    }
}
