using System.Numerics.Tensors;

namespace MoeLab.Engine.Kernels;

/// <summary>One row's dot product with a prepared activation vector; static so the row loop specializes per kernel.</summary>
internal unsafe interface IRowKernel
{
    static abstract float Dot(byte* row, in Activations a, int cols);
}

/// <summary>
/// A kernel that also does <see cref="GroupRows"/> consecutive rows at once, sharing the activation loads and the
/// per-block scale work; results equal that many Dot calls bit for bit, so a row's value never depends on how the
/// rows were split between threads.
/// </summary>
internal unsafe interface IRowGroupKernel : IRowKernel
{
    const int GroupRows = 8;

    static abstract void DotGroup(byte* row0, int stride, in Activations a, int cols, float* y);
}

/// <summary>
/// Plain scalar kernels: the definition the vector kernels must agree with, and the path for CPUs without SIMD.
/// Integer sums per block are exact; one float multiply-add per block (per super-block for K-quants), as in ggml.
/// </summary>
internal static unsafe class ScalarKernels
{
    public struct F32 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float* w = (float*)row;
            float s = 0;
            for (int i = 0; i < cols; i++) s += w[i] * a.F32[i];
            return s;
        }
    }

    public struct F16 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            ushort* w = (ushort*)row;
            float s = 0;
            for (int i = 0; i < cols; i++) s += Fp16.ToFloat(w[i]) * a.F32[i];
            return s;
        }
    }

    public struct BF16 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            ushort* w = (ushort*)row;
            float s = 0;
            for (int i = 0; i < cols; i++) s += Fp16.FromBf16(w[i]) * a.F32[i];
            return s;
        }
    }

    public struct Q8_0 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = row + 34 * b;
                sbyte* y = a.Q8 + 32 * b;
                int isum = 0;
                for (int j = 0; j < 32; j++) isum += (sbyte)p[2 + j] * y[j];
                s += Fp16.Load(p) * a.Q8Scale[b] * isum;
            }
            return s;
        }
    }

    public struct Q4_0 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = row + 18 * b;
                sbyte* y = a.Q8 + 32 * b;
                int isum = 0;
                for (int j = 0; j < 16; j++) isum += ((p[2 + j] & 0xF) - 8) * y[j] + ((p[2 + j] >> 4) - 8) * y[j + 16];
                s += Fp16.Load(p) * a.Q8Scale[b] * isum;
            }
            return s;
        }
    }

    public struct Q4_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 144 * b;
                sbyte* y = a.QK + 256 * b;
                short* bs = a.QKBsums + 16 * b;
                KQuantScales.UnpackQ4K(p + 4, out ulong scales, out ulong mins);
                int isum = 0, msum = 0;
                for (int j = 0; j < 8; j++)
                {
                    byte* q = p + 16 + 32 * (j / 2);
                    int shift = 4 * (j & 1), sub = 0;
                    for (int l = 0; l < 32; l++) sub += ((q[l] >> shift) & 0xF) * y[32 * j + l];
                    isum += (byte)(scales >> (8 * j)) * sub;
                    msum += (byte)(mins >> (8 * j)) * (bs[2 * j] + bs[2 * j + 1]);
                }
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
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 210 * b;
                sbyte* y = a.QK + 256 * b;
                sbyte* sc = (sbyte*)(p + 192);
                int isum = 0;
                for (int n = 0; n < 2; n++)
                {
                    byte* ql = p + 64 * n, qh = p + 128 + 32 * n;
                    sbyte* yy = y + 128 * n;
                    int s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
                    for (int l = 0; l < 32; l++)
                    {
                        int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                        int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                        int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                        int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                        if (l < 16) { s0 += q1 * yy[l]; s2 += q2 * yy[l + 32]; s4 += q3 * yy[l + 64]; s6 += q4 * yy[l + 96]; }
                        else { s1 += q1 * yy[l]; s3 += q2 * yy[l + 32]; s5 += q3 * yy[l + 64]; s7 += q4 * yy[l + 96]; }
                    }
                    sbyte* g = sc + 8 * n;
                    isum += g[0] * s0 + g[1] * s1 + g[2] * s2 + g[3] * s3 + g[4] * s4 + g[5] * s5 + g[6] * s6 + g[7] * s7;
                }
                s += Fp16.Load(p + 208) * a.QKScale[b] * isum;
            }
            return s;
        }
    }

    public struct Q2_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 84 * b;
                sbyte* y = a.QK + 256 * b;
                short* bs = a.QKBsums + 16 * b;
                int isum = 0, msum = 0;
                for (int j = 0; j < 16; j++)
                {
                    int sub = 0;
                    for (int i = 16 * j; i < 16 * j + 16; i++)
                    {
                        int n = i / 128, k = (i % 128) / 32, l = i % 32;
                        sub += ((p[16 + 32 * n + l] >> (2 * k)) & 3) * y[i];
                    }
                    isum += (p[j] & 0xF) * sub;
                    msum += (p[j] >> 4) * bs[j];
                }
                float dy = a.QKScale[b];
                s += Fp16.Load(p + 80) * dy * isum - Fp16.Load(p + 82) * dy * msum;
            }
            return s;
        }
    }

    public struct Q3_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            sbyte* sc = stackalloc sbyte[16];
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 110 * b;
                sbyte* y = a.QK + 256 * b;
                KQuantScales.UnpackQ3K(p + 96, sc);
                int isum = 0;
                for (int j = 0; j < 16; j++)
                {
                    int sub = 0;
                    for (int i = 16 * j; i < 16 * j + 16; i++)
                    {
                        int n = i / 128, k = (i % 128) / 32, l = i % 32;
                        int q = (p[32 + 32 * n + l] >> (2 * k)) & 3;
                        if ((p[l] & (1 << (i / 32))) == 0) q -= 4;
                        sub += q * y[i];
                    }
                    isum += sc[j] * sub;
                }
                s += Fp16.Load(p + 108) * a.QKScale[b] * isum;
            }
            return s;
        }
    }

    /// <summary>F32 rows in every vector tier: TensorPrimitives already is the vectorized reference dot.</summary>
    public struct F32Vector : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols) =>
            TensorPrimitives.Dot(new ReadOnlySpan<float>(row, cols), new ReadOnlySpan<float>(a.F32, cols));
    }
}
