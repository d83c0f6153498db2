using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>
/// Scalar kernels for Q4_1, Q5_0, Q5_1 (against x's Q8_0 quants; Q4_1/Q5_1 also use Q8_1's block sum s, so the
/// min term is m·s per block as in ggml) and Q5_K (against Q8_K, the min term from the bsums as for Q4_K).
/// </summary>
internal static unsafe class Q5ScalarKernels
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

    public struct Q4_1 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = row + 20 * b;
                sbyte* y = a.Q8 + 32 * b;
                int isum = 0;
                for (int j = 0; j < 16; j++) isum += (p[4 + j] & 0xF) * y[j] + (p[4 + j] >> 4) * y[j + 16];
                s += Fp16.Load(p) * a.Q8Scale[b] * isum + Fp16.Load(p + 2) * a.Q8S[b];
            }
            return s;
        }
    }

    public struct Q5_0 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = row + 22 * b;
                sbyte* y = a.Q8 + 32 * b;
                uint qh = *(uint*)(p + 2);
                int isum = 0;
                for (int j = 0; j < 16; j++)
                {
                    int q0 = (p[6 + j] & 0xF) | (int)(((qh >> j) & 1) << 4);
                    int q1 = (p[6 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
                    isum += (q0 - 16) * y[j] + (q1 - 16) * y[j + 16];
                }
                s += Fp16.Load(p) * a.Q8Scale[b] * isum;
            }
            return s;
        }
    }

    public struct Q5_1 : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            for (int b = 0; b < cols / 32; b++)
            {
                byte* p = row + 24 * b;
                sbyte* y = a.Q8 + 32 * b;
                uint qh = *(uint*)(p + 4);
                int isum = 0;
                for (int j = 0; j < 16; j++)
                {
                    int q0 = (p[8 + j] & 0xF) | (int)(((qh >> j) & 1) << 4);
                    int q1 = (p[8 + j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
                    isum += q0 * y[j] + q1 * y[j + 16];
                }
                s += Fp16.Load(p) * a.Q8Scale[b] * isum + Fp16.Load(p + 2) * a.Q8S[b];
            }
            return s;
        }
    }

    public struct Q5_K : IRowKernel
    {
        public static float Dot(byte* row, in Activations a, int cols)
        {
            float s = 0;
            for (int b = 0; b < cols / 256; b++)
            {
                byte* p = row + 176 * b;
                sbyte* y = a.QK + 256 * b;
                short* bs = a.QKBsums + 16 * b;
                KQuantScales.UnpackQ4K(p + 4, out ulong scales, out ulong mins);
                byte* qh = p + 16;
                int isum = 0, msum = 0;
                for (int j = 0; j < 8; j++)
                {
                    byte* ql = p + 48 + 32 * (j / 2);
                    int shift = 4 * (j & 1), sub = 0;
                    for (int l = 0; l < 32; l++) sub += (((ql[l] >> shift) & 0xF) | (((qh[l] >> j) & 1) << 4)) * y[32 * j + l];
                    isum += (byte)(scales >> (8 * j)) * sub;
                    msum += (byte)(mins >> (8 * j)) * (bs[2 * j] + bs[2 * j + 1]);
                }
                float dy = a.QKScale[b];
                s += Fp16.Load(p) * dy * isum - Fp16.Load(p + 2) * dy * msum;
            }
            return s;
        }
    }
}
