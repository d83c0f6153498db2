using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>
/// Vector128 kernels for Q4_1, Q5_0, Q5_1 and Q5_K (all SIMD tiers use them): the 4-bit halves and the fifth bit
/// are unpacked to 16 bytes at a time and dotted with widening multiplies, so block sums are exact integers and
/// the float work per block is the scalar kernels'.
/// </summary>
internal static unsafe class Q5PortableKernels
{
    public static void Rows(in WeightMatrix w, in Activations a, float* y, int r0, int r1)
    {
        switch (w.Type)
        {
            case GgmlType.Q4_1: MatVec.Loop<Q4_1>(w, a, y, r0, r1); break;
            case GgmlType.Q5_0: MatVec.Loop<Q5_0>(w, a, y, r0, r1); break;
            case GgmlType.Q5_1: MatVec.Loop<Q5_1>(w, a, y, r0, r1); break;
            case GgmlType.Q5_K: MatVec.Loop<Q5_K>(w, a, y, r0, r1); break;
            default: throw new NotSupportedException($"no matvec kernel for ggml type {w.Type}");
        }
    }

    /// <summary>Sum of the 16 products of weights (each in -16..31) with signed bytes, in 16/32-bit lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Dot16(Vector128<byte> w, Vector128<sbyte> y, Vector128<int> acc)
    {
        var (wl, wh) = Vector128.Widen(w.AsSByte());
        var (yl, yh) = Vector128.Widen(y);
        var (sl, sh) = Vector128.Widen(wl * yl + wh * yh);
        return acc + sl + sh;
    }

    /// <summary>16 bits of <paramref name="bits"/> as 16 bytes of 0x10 (set) or 0: the fifth bit of each weight.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> FifthBits(uint bits)
    {
        var spread = Vector128.Create(0x0101010101010101UL * (bits & 0xFF), 0x0101010101010101UL * ((bits >> 8) & 0xFF)).AsByte();
        var select = Vector128.Create(0x8040201008040201UL).AsByte();
        return Vector128.Equals(spread & select, select) & Vector128.Create((byte)0x10);
    }

    public struct Q4_1 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var nib = Vector128.Create((byte)0xF);
            float s = 0;
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = row + 20 * b;
                sbyte* y = a.Q8 + 32 * b;
                var qs = Vector128.Load(p + 4);
                var acc = Dot16(qs & nib, Vector128.Load(y), Vector128<int>.Zero);
                acc = Dot16(Vector128.ShiftRightLogical(qs, 4), Vector128.Load(y + 16), acc);
                s += Fp16.Load(p) * a.Q8Scale[b] * Vector128.Sum(acc) + Fp16.Load(p + 2) * a.Q8S[b];
            }
            return s;
        }
    }

    public struct Q5_0 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var nib = Vector128.Create((byte)0xF);
            var sixteen = Vector128.Create((byte)16);
            float s = 0;
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = row + 22 * b;
                sbyte* y = a.Q8 + 32 * b;
                uint qh = Unsafe.ReadUnaligned<uint>(p + 2);
                var qs = Vector128.Load(p + 6);
                var lo = ((qs & nib) | FifthBits(qh)) - sixteen;
                var hi = (Vector128.ShiftRightLogical(qs, 4) | FifthBits(qh >> 16)) - sixteen;
                var acc = Dot16(lo, Vector128.Load(y), Vector128<int>.Zero);
                acc = Dot16(hi, Vector128.Load(y + 16), acc);
                s += Fp16.Load(p) * a.Q8Scale[b] * Vector128.Sum(acc);
            }
            return s;
        }
    }

    public struct Q5_1 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var nib = Vector128.Create((byte)0xF);
            float s = 0;
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = row + 24 * b;
                sbyte* y = a.Q8 + 32 * b;
                uint qh = Unsafe.ReadUnaligned<uint>(p + 4);
                var qs = Vector128.Load(p + 8);
                var acc = Dot16((qs & nib) | FifthBits(qh), Vector128.Load(y), Vector128<int>.Zero);
                acc = Dot16(Vector128.ShiftRightLogical(qs, 4) | FifthBits(qh >> 16), Vector128.Load(y + 16), acc);
                s += Fp16.Load(p) * a.Q8Scale[b] * Vector128.Sum(acc) + Fp16.Load(p + 2) * a.Q8S[b];
            }
            return s;
        }
    }

    public struct Q5_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var nib = Vector128.Create((byte)0xF);
            var one = Vector128.Create((byte)1);
            float s = 0;
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 176 * b;
                sbyte* y = a.QK + 256 * b;
                short* bs = a.QKBsums + 16 * b;
                KQuantScales.UnpackQ4K(p + 4, out ulong scales, out ulong mins);
                var qh0 = Vector128.Load(p + 16);
                var qh1 = Vector128.Load(p + 32);
                int isum = 0, msum = 0;
                for (int j = 0; j < 8; j++)
                {
                    byte* ql = p + 48 + 32 * (j / 2);
                    int shift = 4 * (j & 1);
                    var w0 = (Vector128.ShiftRightLogical(Vector128.Load(ql), shift) & nib) | ((Vector128.ShiftRightLogical(qh0, j) & one) << 4);
                    var w1 = (Vector128.ShiftRightLogical(Vector128.Load(ql + 16), shift) & nib) | ((Vector128.ShiftRightLogical(qh1, j) & one) << 4);
                    var acc = Dot16(w0, Vector128.Load(y + 32 * j), Vector128<int>.Zero);
                    acc = Dot16(w1, Vector128.Load(y + 32 * j + 16), acc);
                    isum += (byte)(scales >> (8 * j)) * Vector128.Sum(acc);
                    msum += (byte)(mins >> (8 * j)) * (bs[2 * j] + bs[2 * j + 1]);
                }
                float dy = a.QKScale[b];
                s += Fp16.Load(p) * dy * isum - Fp16.Load(p + 2) * dy * msum;
            }
            return s;
        }
    }
}
