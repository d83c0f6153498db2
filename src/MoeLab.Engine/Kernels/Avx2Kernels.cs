using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoeLab.Engine.Kernels;

/// <summary>Compile-time switch between AVX-VNNI dot instructions and the AVX2 maddubs/madd pair.</summary>
internal interface IVnniMode
{
    static abstract bool Enabled { get; }
}

internal struct WithVnni : IVnniMode
{
    public static bool Enabled => true;
}

internal struct WithoutVnni : IVnniMode
{
    public static bool Enabled => false;
}

/// <summary>
/// 256-bit kernels (AVX2 + FMA; AVX-VNNI vpdpbusd/vpdpwssd when <typeparamref name="V"/> says so). Integer dot
/// products per block are exact; weights with an offset (Q4_0's -8, Q6_K's -32) are dotted unsigned and the
/// offset is removed with the activation sums, as ggml does with bsums.
/// </summary>
internal static unsafe class Avx2Kernels<V> where V : struct, IVnniMode
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> DotU8S8(Vector256<int> acc, Vector256<byte> u, Vector256<sbyte> s)
    {
        if (V.Enabled) return AvxVnni.MultiplyWideningAndAdd(acc, u, s);
        // maddubs saturates at int16: callers keep |u|*|s|*2 below 32768 (u <= 128, s in [-127, 127])
        return Avx2.Add(acc, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(u, s), Vector256.Create((short)1)));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> DotS16(Vector256<int> acc, Vector256<short> a, Vector256<short> b)
    {
        if (V.Enabled) return AvxVnni.MultiplyWideningAndAdd(acc, a, b);
        return Avx2.Add(acc, Avx2.MultiplyAddAdjacent(a, b));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum(Vector256<float> v) => Vector256.Sum(v);

    // Per-128-bit-lane word pickers: low lane repeats word lo, high lane repeats word hi (lane-local vpshufb).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> WordPicker(int lo, int hi) => Vector256.Create(
        Vector128.Create((ushort)((2 * lo) | ((2 * lo + 1) << 8))).AsByte(),
        Vector128.Create((ushort)((2 * hi) | ((2 * hi + 1) << 8))).AsByte());

    // IEEE half (in the low 16 bits of each lane) to single with integer ops: shift the exponent/mantissa into place and
    // rescale by 2^112 (exact for normals and subnormals); infinities and NaNs get the all-ones exponent.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> HalfToSingle(Vector256<uint> u)
    {
        var sign = (u & Vector256.Create(0x8000u)) << 16;
        var em = u & Vector256.Create(0x7FFFu);
        var f = (em << 13).AsSingle() * Vector256.Create(5.192296858534828e+33f);
        var inf = Vector256.GreaterThanOrEqual(em, Vector256.Create(0x7C00u));
        var special = ((em << 13) | Vector256.Create(0x7F800000u)).AsSingle();
        f = Vector256.ConditionalSelect(inf.AsSingle(), special, f);
        return (f.AsUInt32() | sign).AsSingle();
    }

    public struct F16 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var acc = Vector256<float>.Zero;
            ushort* w = (ushort*)row;
            int i = 0;
            for (; i + 8 <= cols; i += 8)
                acc = Fma.MultiplyAdd(HalfToSingle(Avx2.ConvertToVector256Int32(Vector128.Load(w + i)).AsUInt32()), Vector256.Load(a.F32 + i), acc);
            float s = Sum(acc);
            for (; i < cols; i++) s += Fp16.ToFloat(w[i]) * a.F32[i];
            return s;
        }

        }

    public struct BF16 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var acc = Vector256<float>.Zero;
            ushort* w = (ushort*)row;
            int i = 0;
            for (; i + 8 <= cols; i += 8)
            {
                var f = (Avx2.ConvertToVector256Int32(Vector128.Load(w + i)) << 16).AsSingle();
                acc = Fma.MultiplyAdd(f, Vector256.Load(a.F32 + i), acc);
            }
            float s = Sum(acc);
            for (; i < cols; i++) s += Fp16.FromBf16(w[i]) * a.F32[i];
            return s;
        }
    }

    // Q8_0 and Q4_0: per block an exact integer dot, then one fused multiply-add by d_w·d_y into a float accumulator.
    // The one-row Dot does exactly that per row and DotGroup does it per lane for eight rows, so they agree bit for bit.

    /// <summary>A 32-weight block with an fp16 scale first that meets Q8_0 activations: its size and integer dot.</summary>
    private interface IBlock32
    {
        static abstract int Bytes { get; }

        /// <summary>Σ w'·y in int lanes, with w' the stored weight as the dot instruction takes it.</summary>
        static abstract Vector256<int> BlockDot(byte* p, Vector256<sbyte> y);

        /// <summary>Σ w'·y - Σ w·y for block b (w' carries an offset the activation sum removes).</summary>
        static abstract int Offset(in Activations a, int b);
    }

    private static float Dot<B>(byte* row, in Activations a, int cols) where B : struct, IBlock32
    {
        float acc = 0;
        for (int b = 0; b < cols / 32; b++)
        {
            byte* p = row + B.Bytes * b;
            int isum = Vector256.Sum(B.BlockDot(p, Vector256.Load(a.Q8 + 32 * b))) - B.Offset(a, b);
            acc = MathF.FusedMultiplyAdd(isum, Fp16.Load(p) * a.Q8Scale[b], acc);
        }
        return acc;
    }

    private static void DotGroup<B>(byte* row0, int stride, in Activations a, int cols, float* y) where B : struct, IBlock32
    {
        var acc = Vector256<float>.Zero;
        var rowOffsets = Vector256<int>.Indices * stride;
        for (int b = 0; b < cols / 32; b++)
        {
            byte* p = row0 + B.Bytes * b;
            PrefetchNextGroup(row0 + 8 * stride + 8 * B.Bytes * b, (8 * B.Bytes + 63) / 64);
            var yq = Vector256.Load(a.Q8 + 32 * b);
            var isum = RowSums(
                B.BlockDot(p, yq), B.BlockDot(p + stride, yq), B.BlockDot(p + 2 * stride, yq), B.BlockDot(p + 3 * stride, yq),
                B.BlockDot(p + 4 * stride, yq), B.BlockDot(p + 5 * stride, yq), B.BlockDot(p + 6 * stride, yq), B.BlockDot(p + 7 * stride, yq));
            isum -= Vector256.Create(B.Offset(a, b));
            var d = ScalesOf8Rows(p, rowOffsets) * Vector256.Create(a.Q8Scale[b]);
            acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), d, acc);
        }
        acc.Store(y);
    }

    public struct Q8_0 : IRowGroupKernel, IBlock32
    {
        public static int Bytes => 34;

        public static float Dot(byte* row, in Activations a, int cols) => Dot<Q8_0>(row, a, cols);

        public static void DotGroup(byte* row0, int stride, in Activations a, int cols, float* y) => DotGroup<Q8_0>(row0, stride, a, cols, y);

        // VNNI's vpdpbusd wants unsigned weights: it dots w+128 (a sign-bit flip) and Offset removes 128·Σy
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int Offset(in Activations a, int b) => V.Enabled ? a.Q8Sum[b] << 7 : 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> BlockDot(byte* p, Vector256<sbyte> y)
        {
            var w = Vector256.Load((sbyte*)(p + 2));
            if (V.Enabled) return AvxVnni.MultiplyWideningAndAdd(Vector256<int>.Zero, w.AsByte() ^ Vector256.Create((byte)0x80), y);
            // |w| * (y with w's sign) keeps vpmaddubsw's left operand unsigned and below saturation
            return DotU8S8(Vector256<int>.Zero, Avx2.Abs(w), Avx2.Sign(y, w));
        }
    }

    public struct Q4_0 : IRowGroupKernel, IBlock32
    {
        public static int Bytes => 18;

        public static float Dot(byte* row, in Activations a, int cols) => Dot<Q4_0>(row, a, cols);

        public static void DotGroup(byte* row0, int stride, in Activations a, int cols, float* y) => DotGroup<Q4_0>(row0, stride, a, cols, y);

        // Σ(q-8)y = Σqy - 8Σy
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static int Offset(in Activations a, int b) => a.Q8Sum[b] << 3;

        // Σ q·y over one block with the unsigned nibbles q: both lanes get the 16 packed bytes, the high lane shifted by 4
        // yields elements 16..31 after the mask
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> BlockDot(byte* p, Vector256<sbyte> y)
        {
            var q = Avx2.BroadcastVector128ToVector256(p + 2).AsUInt32();
            var w = Avx2.ShiftRightLogicalVariable(q, Vector256.Create(0u, 0, 0, 0, 4, 4, 4, 4)).AsByte() & Vector256.Create((byte)0x0F);
            return DotU8S8(Vector256<int>.Zero, w, y);
        }
    }

    /// <summary>
    /// Q4_0 in <see cref="WeightLayout.Interleaved8"/> (<see cref="RowInterleave"/>): per block four contiguous 32-byte
    /// loads hold all eight rows' weights with int lane j = row j, so each dot instruction adds four products to every
    /// row against one broadcast of four activation bytes, with no horizontal sums and the scales in one load. The
    /// integer sums and the one multiply-add per block are those of <see cref="Q4_0.Dot"/>: bit-identical.
    /// </summary>
    public struct Q4_0x8
    {
        public static void DotGroup(byte* group, in Activations a, int cols, float* y)
        {
            var acc = Vector256<float>.Zero;
            var m4 = Vector256.Create((byte)0x0F);
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = group + 144 * b;
                int* yq = (int*)(a.Q8 + 32 * b);
                var q0 = Vector256.Load(p + 16);
                var q1 = Vector256.Load(p + 48);
                var q2 = Vector256.Load(p + 80);
                var q3 = Vector256.Load(p + 112);
                // low nibbles are elements 4v..4v+3, high nibbles 16+4v..16+4v+3; two chains halve the dependency depth
                var lo = DotU8S8(Vector256<int>.Zero, q0 & m4, Vector256.Create(yq[0]).AsSByte());
                var hi = DotU8S8(Vector256<int>.Zero, (q0.AsUInt16() >> 4).AsByte() & m4, Vector256.Create(yq[4]).AsSByte());
                lo = DotU8S8(lo, q1 & m4, Vector256.Create(yq[1]).AsSByte());
                hi = DotU8S8(hi, (q1.AsUInt16() >> 4).AsByte() & m4, Vector256.Create(yq[5]).AsSByte());
                lo = DotU8S8(lo, q2 & m4, Vector256.Create(yq[2]).AsSByte());
                hi = DotU8S8(hi, (q2.AsUInt16() >> 4).AsByte() & m4, Vector256.Create(yq[6]).AsSByte());
                lo = DotU8S8(lo, q3 & m4, Vector256.Create(yq[3]).AsSByte());
                hi = DotU8S8(hi, (q3.AsUInt16() >> 4).AsByte() & m4, Vector256.Create(yq[7]).AsSByte());
                // Σ(q-8)y = Σqy - 8Σy, once for all eight rows
                var isum = lo + hi - Vector256.Create(a.Q8Sum[b] << 3);
                var d = HalfToSingle(Avx2.ConvertToVector256Int32((ushort*)p).AsUInt32()) * Vector256.Create(a.Q8Scale[b]);
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), d, acc);
            }
            acc.Store(y);
        }
    }

    /// <summary>
    /// Q4_K in <see cref="WeightLayout.Interleaved8"/> (<see cref="RowInterleave"/>): lane j = row j throughout, so each
    /// sub-block's integer sum, its 6-bit scale and the mins' term are exact per-row integers, and the float step is
    /// <see cref="ScalarKernels.Q4_K"/>'s expression per super-block: bit-identical to the scalar tier.
    /// </summary>
    public struct Q4_Kx8
    {
        public static void DotGroup(byte* group, in Activations a, int cols, float* y)
        {
            var s = Vector256<float>.Zero;
            var m6 = Vector256.Create(0x3F3F3F3Fu);
            var m4 = Vector256.Create(0x0F0F0F0Fu);
            var m2 = Vector256.Create(0x03030303u);
            var evenBytes = Vector256.Create(0x00FF00FFu);
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = group + 1152 * b;
                int* yq = (int*)(a.QK + 256 * b);
                // KQuantScales.UnpackQ4K for eight rows at once: lane j holds row j's four scales (or mins) as bytes
                var a0 = Vector256.Load((uint*)(p + 32));
                var a1 = Vector256.Load((uint*)(p + 64));
                var a2 = Vector256.Load((uint*)(p + 96));
                var sc03 = a0 & m6;
                var sc47 = (a2 & m4) | (((a0 >> 6) & m2) << 4);
                var mn03 = a1 & m6;
                var mn47 = ((a2 >> 4) & m4) | (((a1 >> 6) & m2) << 4);
                var isum = Chunk(p + 128, yq, sc03, Vector256<int>.Zero);
                isum = Chunk(p + 384, yq + 16, sc03 >> 16, isum);
                isum = Chunk(p + 640, yq + 32, sc47, isum);
                isum = Chunk(p + 896, yq + 48, sc47 >> 16, isum);
                // Σ_j m_j (bsum_2j + bsum_2j+1): the mins as 16-bit pairs (m0, m2), (m1, m3) against the matching sums
                short* bs = a.QKBsums + 16 * b;
                int b0 = bs[0] + bs[1], b1 = bs[2] + bs[3], b2 = bs[4] + bs[5], b3 = bs[6] + bs[7];
                int b4 = bs[8] + bs[9], b5 = bs[10] + bs[11], b6 = bs[12] + bs[13], b7 = bs[14] + bs[15];
                var msum = Avx2.MultiplyAddAdjacent((mn03 & evenBytes).AsInt16(), Pair(b0, b2))
                    + Avx2.MultiplyAddAdjacent(((mn03 >> 8) & evenBytes).AsInt16(), Pair(b1, b3))
                    + Avx2.MultiplyAddAdjacent((mn47 & evenBytes).AsInt16(), Pair(b4, b6))
                    + Avx2.MultiplyAddAdjacent(((mn47 >> 8) & evenBytes).AsInt16(), Pair(b5, b7));
                var dy = Vector256.Create(a.QKScale[b]);
                var d = HalfToSingle(Avx2.ConvertToVector256Int32((ushort*)p).AsUInt32());
                var dmin = HalfToSingle(Avx2.ConvertToVector256Int32((ushort*)(p + 16)).AsUInt32());
                s += d * dy * Avx.ConvertToVector256Single(isum) - dmin * dy * Avx.ConvertToVector256Single(msum);
            }
            s.Store(y);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<short> Pair(int lo, int hi) => Vector256.Create((lo & 0xFFFF) | (hi << 16)).AsInt16();

        // 64 weights of each row: low nibbles are sub-block 2c (scale in byte 0 of sc), high nibbles 2c+1 (byte 1)
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<int> Chunk(byte* q, int* yq, Vector256<uint> sc, Vector256<int> isum)
        {
            var m4 = Vector256.Create((byte)0x0F);
            var lo = Vector256<int>.Zero;
            var hi = Vector256<int>.Zero;
            for (int k = 0; k < 8; k++)
            {
                var v = Vector256.Load(q + 32 * k);
                lo = DotU8S8(lo, v & m4, Vector256.Create(yq[k]).AsSByte());
                hi = DotU8S8(hi, (v.AsUInt16() >> 4).AsByte() & m4, Vector256.Create(yq[8 + k]).AsSByte());
            }
            var mask = Vector256.Create(0xFFu);
            return isum + lo * (sc & mask).AsInt32() + hi * ((sc >> 8) & mask).AsInt32();
        }
    }

    /// <summary>
    /// Prefetches the next row group's bytes in step with this group's progress: the group reads eight interleaved
    /// streams, too many and too slow for the hardware prefetcher to run ahead of on its own, while the next group
    /// is one contiguous range (prefetching past the matrix or the thread's rows is harmless).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void PrefetchNextGroup(byte* p, int lines)
    {
        for (int i = 0; i < lines; i++) Sse.Prefetch0(p + 64 * i);
    }

    /// <summary>The eight rows' totals of eight per-row partial-sum vectors, in row order (exact integer adds).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> RowSums(Vector256<int> v0, Vector256<int> v1, Vector256<int> v2, Vector256<int> v3,
        Vector256<int> v4, Vector256<int> v5, Vector256<int> v6, Vector256<int> v7)
    {
        // each 128-bit lane of q0 holds rows 0..3's sums over that lane's elements, q1 rows 4..7's
        var q0 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(v0, v1), Avx2.HorizontalAdd(v2, v3));
        var q1 = Avx2.HorizontalAdd(Avx2.HorizontalAdd(v4, v5), Avx2.HorizontalAdd(v6, v7));
        return Avx2.Permute2x128(q0, q1, 0x20) + Avx2.Permute2x128(q0, q1, 0x31);
    }

    /// <summary>The fp16 block scales at the start of the blocks at p, p + offsets[1], ... as floats: one gather, no table.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> ScalesOf8Rows(byte* p, Vector256<int> rowOffsets) =>
        HalfToSingle(Avx2.GatherVector256((int*)p, rowOffsets, 1).AsUInt32()); // the upper 16 bits are ignored

    public struct Q4_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            // Per block the exact integer sums, then the scalar tier's float expression: the same bits as ScalarKernels.Q4_K
            // and the 8-row interleaved Q4_Kx8, so a streamed expert (file layout, this kernel) and a resident one
            // (repacked at load) give identical logits.
            float s = 0;
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 144 * b;
                sbyte* y = a.QK + 256 * b;
                KQuantScales.UnpackQ4K(p + 4, out ulong scales, out ulong mins);
                var sc8 = Sse41.ConvertToVector128Int16(Vector128.CreateScalar(scales).AsByte());
                var sc = Vector256.Create(sc8, sc8).AsByte();
                // unrolled so each scale picker is a constant (a computed picker costs more than the shuffle)
                var isum = Chunk(p + 16, y, sc, 0, Vector256<int>.Zero);
                isum = Chunk(p + 16, y, sc, 1, isum);
                isum = Chunk(p + 16, y, sc, 2, isum);
                isum = Chunk(p + 16, y, sc, 3, isum);
                // mins: Σ_j m_j (bsum_2j + bsum_2j+1), with each min repeated in both words of its int lane
                var m32 = Avx2.ConvertToVector256Int32(Vector128.CreateScalar(mins).AsByte());
                var mdup = (m32 | (m32 << 16)).AsInt16();
                var msum = Avx2.MultiplyAddAdjacent(Vector256.Load(a.QKBsums + 16 * b), mdup);
                float dy = a.QKScale[b];
                s += Fp16.Load(p) * dy * Vector256.Sum(isum) - Fp16.Load(p + 2) * dy * Vector256.Sum(msum);
            }
            return s;
        }

        // 64 weights: low nibbles are sub-block 2c, high nibbles sub-block 2c+1
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<int> Chunk(byte* qs, sbyte* y, Vector256<byte> sc, int c, Vector256<int> isum)
        {
            var mask = Vector256.Create((byte)0x0F);
            var qb = Vector256.Load(qs + 32 * c);
            var lo = qb & mask;
            var hi = Vector256.ShiftRightLogical(qb.AsUInt16(), 4).AsByte() & mask;
            var p0 = Avx2.MultiplyAddAdjacent(lo, Vector256.Load(y + 64 * c));
            var p1 = Avx2.MultiplyAddAdjacent(hi, Vector256.Load(y + 64 * c + 32));
            isum = DotS16(isum, p0, Avx2.Shuffle(sc, WordPicker(2 * c, 2 * c)).AsInt16());
            return DotS16(isum, p1, Avx2.Shuffle(sc, WordPicker(2 * c + 1, 2 * c + 1)).AsInt16());
        }
    }

    public struct Q6_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var acc = Vector256<float>.Zero;
            var m4 = Vector256.Create((byte)0x0F);
            var m2 = Vector256.Create((byte)0x30);
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 210 * b;
                sbyte* y = a.QK + 256 * b;
                var sc16 = Avx2.ConvertToVector256Int16(Vector128.Load((sbyte*)(p + 192)));
                // the values are stored +32: Σ sc_j Σ (q-32) y = Σ sc_j Σ q y - 32 Σ sc_j bsum_j
                var isum = -(Avx2.MultiplyAddAdjacent(Vector256.Load(a.QKBsums + 16 * b), sc16) << 5);
                for (int n = 0; n < 2; n++)
                {
                    var L0 = Vector256.Load(p + 64 * n);
                    var L1 = Vector256.Load(p + 64 * n + 32);
                    var H = Vector256.Load(p + 128 + 32 * n).AsUInt16();
                    var q0 = (L0 & m4) | ((H << 4).AsByte() & m2);
                    var q1 = (L1 & m4) | ((H << 2).AsByte() & m2);
                    var q2 = ((L0.AsUInt16() >> 4).AsByte() & m4) | (H.AsByte() & m2);
                    var q3 = ((L1.AsUInt16() >> 4).AsByte() & m4) | ((H >> 2).AsByte() & m2);
                    sbyte* yy = y + 128 * n;
                    var s8 = Sse41.ConvertToVector128Int16(Vector128.Load((sbyte*)(p + 192 + 8 * n)));
                    var sc = Vector256.Create(s8, s8).AsByte();
                    isum = DotS16(isum, Avx2.MultiplyAddAdjacent(q0, Vector256.Load(yy)), Avx2.Shuffle(sc, WordPicker(0, 1)).AsInt16());
                    isum = DotS16(isum, Avx2.MultiplyAddAdjacent(q1, Vector256.Load(yy + 32)), Avx2.Shuffle(sc, WordPicker(2, 3)).AsInt16());
                    isum = DotS16(isum, Avx2.MultiplyAddAdjacent(q2, Vector256.Load(yy + 64)), Avx2.Shuffle(sc, WordPicker(4, 5)).AsInt16());
                    isum = DotS16(isum, Avx2.MultiplyAddAdjacent(q3, Vector256.Load(yy + 96)), Avx2.Shuffle(sc, WordPicker(6, 7)).AsInt16());
                }
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Vector256.Create(Fp16.Load(p + 208) * a.QKScale[b]), acc);
            }
            return Sum(acc);
        }
    }

    public struct Q2_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var acc = Vector256<float>.Zero;
            var accMin = Vector256<float>.Zero;
            var m3 = Vector256.Create((byte)3);
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 84 * b;
                sbyte* y = a.QK + 256 * b;
                var packed = Vector128.Load(p);
                var sc16 = Avx2.ConvertToVector256Int16(packed & Vector128.Create((byte)0x0F));
                var mn16 = Avx2.ConvertToVector256Int16(Vector128.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & Vector128.Create((byte)0x0F));
                var msum = Avx2.MultiplyAddAdjacent(Vector256.Load(a.QKBsums + 16 * b), mn16);
                var isum = Vector256<int>.Zero;
                for (int n = 0; n < 2; n++)
                {
                    var Q = Vector256.Load(p + 16 + 32 * n).AsUInt16();
                    var s8 = n == 0 ? sc16.GetLower() : sc16.GetUpper();
                    var sc = Vector256.Create(s8, s8).AsByte();
                    sbyte* yy = y + 128 * n;
                    for (int k = 0; k < 4; k++)
                    {
                        var v = (Q >> (2 * k)).AsByte() & m3;
                        isum = DotS16(isum, Avx2.MultiplyAddAdjacent(v, Vector256.Load(yy + 32 * k)), Avx2.Shuffle(sc, WordPicker(2 * k, 2 * k + 1)).AsInt16());
                    }
                }
                float dy = a.QKScale[b];
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Vector256.Create(Fp16.Load(p + 80) * dy), acc);
                accMin = Fma.MultiplyAdd(Avx.ConvertToVector256Single(msum), Vector256.Create(Fp16.Load(p + 82) * dy), accMin);
            }
            return Sum(acc) - Sum(accMin);
        }
    }

    public struct Q3_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var acc = Vector256<float>.Zero;
            var m3 = Vector256.Create((byte)3);
            var one = Vector256.Create((byte)1);
            sbyte* scb = stackalloc sbyte[16];
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 110 * b;
                sbyte* y = a.QK + 256 * b;
                KQuantScales.UnpackQ3K(p + 96, scb);
                var sc16 = Avx2.ConvertToVector256Int16(Vector128.Load(scb));
                // values are low2 + 4*hbit - 4: dot the unsigned 0..7 form, then remove 4 Σ sc_j bsum_j
                var isum = -(Avx2.MultiplyAddAdjacent(Vector256.Load(a.QKBsums + 16 * b), sc16) << 2);
                var H = Vector256.Load(p).AsUInt16();
                for (int n = 0; n < 2; n++)
                {
                    var Q = Vector256.Load(p + 32 + 32 * n).AsUInt16();
                    var s8 = n == 0 ? sc16.GetLower() : sc16.GetUpper();
                    var sc = Vector256.Create(s8, s8).AsByte();
                    sbyte* yy = y + 128 * n;
                    for (int k = 0; k < 4; k++)
                    {
                        var hb = ((H >> (4 * n + k)).AsByte() & one).AsUInt16() << 2;
                        var v = ((Q >> (2 * k)).AsByte() & m3) | hb.AsByte();
                        isum = DotS16(isum, Avx2.MultiplyAddAdjacent(v, Vector256.Load(yy + 32 * k)), Avx2.Shuffle(sc, WordPicker(2 * k, 2 * k + 1)).AsInt16());
                    }
                }
                acc = Fma.MultiplyAdd(Avx.ConvertToVector256Single(isum), Vector256.Create(Fp16.Load(p + 108) * a.QKScale[b]), acc);
            }
            return Sum(acc);
        }
    }
}
