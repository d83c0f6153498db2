using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>Q4_1, Q5_0, Q5_1 and Q5_K back to floats (ggml dequantize_row_*).</summary>
public static unsafe partial class Dequantizer
{
    private static void DequantizeQ5Block(GgmlType type, byte* x, float* y)
    {
        switch (type)
        {
            case GgmlType.Q4_1: Q4_1(x, y); break;
            case GgmlType.Q5_0: Q5_0(x, y); break;
            case GgmlType.Q5_1: Q5_1(x, y); break;
            case GgmlType.Q5_K: Q5_K(x, y); break;
            default: throw new NotSupportedException($"no dequantizer for ggml type {type}");
        }
    }

    private static void Q4_1(byte* x, float* y)
    {
        float d = Fp16.Load(x), m = Fp16.Load(x + 2);
        for (int j = 0; j < 16; j++)
        {
            y[j] = (x[4 + j] & 0xF) * d + m;
            y[j + 16] = (x[4 + j] >> 4) * d + m;
        }
    }

    private static void Q5_0(byte* x, float* y)
    {
        float d = Fp16.Load(x);
        uint qh = *(uint*)(x + 2);
        for (int j = 0; j < 16; j++)
        {
            int hi0 = (int)((qh >> j) << 4) & 0x10, hi1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = (((x[6 + j] & 0xF) | hi0) - 16) * d;
            y[j + 16] = (((x[6 + j] >> 4) | hi1) - 16) * d;
        }
    }

    private static void Q5_1(byte* x, float* y)
    {
        float d = Fp16.Load(x), m = Fp16.Load(x + 2);
        uint qh = *(uint*)(x + 4);
        for (int j = 0; j < 16; j++)
        {
            int hi0 = (int)((qh >> j) << 4) & 0x10, hi1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = ((x[8 + j] & 0xF) | hi0) * d + m;
            y[j + 16] = ((x[8 + j] >> 4) | hi1) * d + m;
        }
    }

    private static void Q5_K(byte* x, float* y)
    {
        float d = Fp16.Load(x), dmin = Fp16.Load(x + 2);
        KQuantScales.UnpackQ4K(x + 4, out ulong scales, out ulong mins);
        byte* qh = x + 16;
        byte* ql = x + 48;
        for (int c = 0; c < 4; c++)
        {
            float d1 = d * (byte)(scales >> (16 * c)), m1 = dmin * (byte)(mins >> (16 * c));
            float d2 = d * (byte)(scales >> (16 * c + 8)), m2 = dmin * (byte)(mins >> (16 * c + 8));
            for (int l = 0; l < 32; l++)
            {
                int hi = qh[l] >> (2 * c);
                y[64 * c + l] = d1 * ((ql[32 * c + l] & 0xF) + ((hi & 1) << 4)) - m1;
                y[64 * c + 32 + l] = d2 * ((ql[32 * c + l] >> 4) + ((hi & 2) << 3)) - m2;
            }
        }
    }
}
