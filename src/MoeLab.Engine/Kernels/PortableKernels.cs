using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MoeLab.Engine.Kernels;

/// <summary>
/// Kernels written only with cross-platform Vector128 operations: the path for CPUs without AVX2 (ARM64 NEON,
/// older x86). int8 products are formed in 16-bit lanes (|w·y| ≤ 128·127, and the sum of two still fits) and
/// widened to 32 bits before accumulating, so block sums are exact as in the other tiers.
/// </summary>
internal static unsafe class PortableKernels
{
    /// <summary>acc += pairwise-widened products of 16 signed bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Dot16(Vector128<sbyte> w, Vector128<sbyte> y, Vector128<int> acc)
    {
        var (wl, wh) = Vector128.Widen(w);
        var (yl, yh) = Vector128.Widen(y);
        var s = wl * yl + wh * yh;
        var (sl, sh) = Vector128.Widen(s);
        return acc + sl + sh;
    }

    public struct F16 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var acc = Vector128<float>.Zero;
            ushort* w = (ushort*)row;
            int i = 0;
            for (; i + 4 <= cols; i += 4)
            {
                var u = Vector128.WidenLower(Vector128.LoadUnsafe(ref *w, (nuint)i));
                acc += Fp16x4(u) * Vector128.Load(a.F32 + i);
            }
            float s = Vector128.Sum(acc);
            for (; i < cols; i++) s += Fp16.ToFloat(w[i]) * a.F32[i];
            return s;
        }

        // same integer conversion as the AVX2 kernel: exact for normals and subnormals, special values kept
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector128<float> Fp16x4(Vector128<uint> u)
        {
            var sign = (u & Vector128.Create(0x8000u)) << 16;
            var em = u & Vector128.Create(0x7FFFu);
            var f = (em << 13).AsSingle() * Vector128.Create(5.192296858534828e+33f);
            var special = ((em << 13) | Vector128.Create(0x7F800000u)).AsSingle();
            f = Vector128.ConditionalSelect(Vector128.GreaterThanOrEqual(em, Vector128.Create(0x7C00u)).AsSingle(), special, f);
            return (f.AsUInt32() | sign).AsSingle();
        }
    }

    public struct BF16 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var acc = Vector128<float>.Zero;
            ushort* w = (ushort*)row;
            int i = 0;
            for (; i + 4 <= cols; i += 4)
            {
                var u = Vector128.WidenLower(Vector128.LoadUnsafe(ref *w, (nuint)i));
                acc += (u << 16).AsSingle() * Vector128.Load(a.F32 + i);
            }
            float s = Vector128.Sum(acc);
            for (; i < cols; i++) s += Fp16.FromBf16(w[i]) * a.F32[i];
            return s;
        }
    }

    public struct Q8_0 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var acc = Vector128<float>.Zero;
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = row + 34 * b;
                sbyte* y = a.Q8 + 32 * b;
                var isum = Dot16(Vector128.Load((sbyte*)(p + 2)), Vector128.Load(y), Vector128<int>.Zero);
                isum = Dot16(Vector128.Load((sbyte*)(p + 18)), Vector128.Load(y + 16), isum);
                acc += Vector128.ConvertToSingle(isum) * Vector128.Create(Fp16.Load(p) * a.Q8Scale[b]);
            }
            return Vector128.Sum(acc);
        }
    }

    public struct Q4_0 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            var acc = Vector128<float>.Zero;
            var mask = Vector128.Create((byte)0x0F);
            var eight = Vector128.Create((sbyte)8);
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = row + 18 * b;
                sbyte* y = a.Q8 + 32 * b;
                var q = Vector128.Load(p + 2);
                var lo = (q & mask).AsSByte() - eight;
                var hi = Vector128.ShiftRightLogical(q, 4).AsSByte() - eight;
                var isum = Dot16(lo, Vector128.Load(y), Vector128<int>.Zero);
                isum = Dot16(hi, Vector128.Load(y + 16), isum);
                acc += Vector128.ConvertToSingle(isum) * Vector128.Create(Fp16.Load(p) * a.Q8Scale[b]);
            }
            return Vector128.Sum(acc);
        }
    }

    public struct Q4_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            var mask = Vector128.Create((byte)0x0F);
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 144 * b;
                sbyte* y = a.QK + 256 * b;
                short* bs = a.QKBsums + 16 * b;
                KQuantScales.UnpackQ4K(p + 4, out ulong scales, out ulong mins);
                int isum = 0, msum = 0;
                for (int c = 0; c < 4; c++)
                {
                    byte* q = p + 16 + 32 * c;
                    sbyte* yy = y + 64 * c;
                    var q0 = Vector128.Load(q);
                    var q1 = Vector128.Load(q + 16);
                    var lo = Dot16((q0 & mask).AsSByte(), Vector128.Load(yy), Vector128<int>.Zero);
                    lo = Dot16((q1 & mask).AsSByte(), Vector128.Load(yy + 16), lo);
                    var hi = Dot16(Vector128.ShiftRightLogical(q0, 4).AsSByte(), Vector128.Load(yy + 32), Vector128<int>.Zero);
                    hi = Dot16(Vector128.ShiftRightLogical(q1, 4).AsSByte(), Vector128.Load(yy + 48), hi);
                    isum += (byte)(scales >> (16 * c)) * Vector128.Sum(lo) + (byte)(scales >> (16 * c + 8)) * Vector128.Sum(hi);
                }
                for (int j = 0; j < 8; j++) msum += (byte)(mins >> (8 * j)) * (bs[2 * j] + bs[2 * j + 1]);
                float dy = a.QKScale[b];
                s += Fp16.Load(p) * dy * isum - Fp16.Load(p + 2) * dy * msum;
            }
            return s;
        }
    }

    public struct Q6_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            var m4 = Vector128.Create((byte)0x0F);
            var m2 = Vector128.Create((byte)0x30);
            var bias = Vector128.Create((sbyte)32);
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 210 * b;
                sbyte* y = a.QK + 256 * b;
                sbyte* sc = (sbyte*)(p + 192);
                int isum = 0;
                for (int n = 0; n < 2; n++)
                {
                    for (int h = 0; h < 2; h++)
                    {
                        // 16 columns l = 16h..16h+15 of this half feed groups 8n + {0,2,4,6} + h
                        int l = 16 * h;
                        var L0 = Vector128.Load(p + 64 * n + l);
                        var L1 = Vector128.Load(p + 64 * n + 32 + l);
                        var H = Vector128.Load(p + 128 + 32 * n + l);
                        var q1 = ((L0 & m4) | (Vector128.ShiftLeft(H, 4) & m2)).AsSByte() - bias;
                        var q2 = ((L1 & m4) | (Vector128.ShiftLeft(H, 2) & m2)).AsSByte() - bias;
                        var q3 = (Vector128.ShiftRightLogical(L0, 4) | (H & m2)).AsSByte() - bias;
                        var q4 = (Vector128.ShiftRightLogical(L1, 4) | (Vector128.ShiftRightLogical(H, 2) & m2)).AsSByte() - bias;
                        sbyte* yy = y + 128 * n + l;
                        sbyte* g = sc + 8 * n + h;
                        isum += g[0] * Vector128.Sum(Dot16(q1, Vector128.Load(yy), Vector128<int>.Zero));
                        isum += g[2] * Vector128.Sum(Dot16(q2, Vector128.Load(yy + 32), Vector128<int>.Zero));
                        isum += g[4] * Vector128.Sum(Dot16(q3, Vector128.Load(yy + 64), Vector128<int>.Zero));
                        isum += g[6] * Vector128.Sum(Dot16(q4, Vector128.Load(yy + 96), Vector128<int>.Zero));
                    }
                }
                s += Fp16.Load(p + 208) * a.QKScale[b] * isum;
            }
            return s;
        }
    }
}
