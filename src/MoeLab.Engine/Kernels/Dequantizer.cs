using System.Runtime.InteropServices;
using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>Block formats back to floats, exactly as ggml's dequantize_row_* define the values.</summary>
public static unsafe partial class Dequantizer
{
    public static bool CanDequantize(GgmlType type) => Quantizer.CanQuantize(type);

    public static void DequantizeRow(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        if (!CanDequantize(type)) throw new NotSupportedException($"no dequantizer for ggml type {type}");
        long need = GgmlTypeInfo.RowBytes(type, dst.Length);
        if (src.Length < need) throw new ArgumentException($"{type} row of {dst.Length} needs {need} bytes, got {src.Length}", nameof(src));
        int bs = GgmlTypeInfo.BlockSize(type), bb = GgmlTypeInfo.BlockBytes(type);
        int nb = dst.Length / bs;
        fixed (byte* ps = src)
        fixed (float* pd = dst)
        {
            switch (type)
            {
                case GgmlType.F32:
                    MemoryMarshal.Cast<byte, float>(src[..(dst.Length * 4)]).CopyTo(dst);
                    return;
                case GgmlType.F16:
                    for (int i = 0; i < dst.Length; i++) pd[i] = Fp16.ToFloat(((ushort*)ps)[i]);
                    return;
                case GgmlType.BF16:
                    for (int i = 0; i < dst.Length; i++) pd[i] = Fp16.FromBf16(((ushort*)ps)[i]);
                    return;
            }
            for (int b = 0; b < nb; b++)
            {
                byte* x = ps + (long)b * bb;
                float* y = pd + (long)b * bs;
                switch (type)
                {
                    case GgmlType.Q8_0: Q8_0(x, y); break;
                    case GgmlType.Q4_0: Q4_0(x, y); break;
                    case GgmlType.Q4_K: Q4_K(x, y); break;
                    case GgmlType.Q6_K: Q6_K(x, y); break;
                    case GgmlType.Q2_K: Q2_K(x, y); break;
                    case GgmlType.Q3_K: Q3_K(x, y); break;
                    case GgmlType.Q8_K: Q8_K(x, y); break;
                    default: DequantizeQ5Block(type, x, y); break;
                }
            }
        }
    }

    private static void Q8_0(byte* x, float* y)
    {
        float d = Fp16.Load(x);
        for (int j = 0; j < 32; j++) y[j] = d * (sbyte)x[2 + j];
    }

    private static void Q4_0(byte* x, float* y)
    {
        float d = Fp16.Load(x);
        for (int j = 0; j < 16; j++)
        {
            y[j] = d * ((x[2 + j] & 0xF) - 8);
            y[j + 16] = d * ((x[2 + j] >> 4) - 8);
        }
    }

    private static void Q8_K(byte* x, float* y)
    {
        float d = *(float*)x;
        for (int j = 0; j < 256; j++) y[j] = d * (sbyte)x[4 + j];
    }

    private static void Q4_K(byte* x, float* y)
    {
        float d = Fp16.Load(x), dmin = Fp16.Load(x + 2);
        KQuantScales.UnpackQ4K(x + 4, out ulong scales, out ulong mins);
        byte* q = x + 16;
        for (int c = 0; c < 4; c++)
        {
            float d1 = d * (byte)(scales >> (16 * c)), m1 = dmin * (byte)(mins >> (16 * c));
            float d2 = d * (byte)(scales >> (16 * c + 8)), m2 = dmin * (byte)(mins >> (16 * c + 8));
            for (int l = 0; l < 32; l++)
            {
                y[64 * c + l] = d1 * (q[32 * c + l] & 0xF) - m1;
                y[64 * c + 32 + l] = d2 * (q[32 * c + l] >> 4) - m2;
            }
        }
    }

    private static void Q6_K(byte* x, float* y)
    {
        float d = Fp16.Load(x + 208);
        sbyte* sc = (sbyte*)(x + 192);
        for (int n = 0; n < 2; n++)
        {
            byte* ql = x + 64 * n;
            byte* qh = x + 128 + 32 * n;
            float* yy = y + 128 * n;
            sbyte* s = sc + 8 * n;
            for (int l = 0; l < 32; l++)
            {
                int g = l / 16;
                yy[l] = d * s[g] * (((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
                yy[l + 32] = d * s[g + 2] * (((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                yy[l + 64] = d * s[g + 4] * (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                yy[l + 96] = d * s[g + 6] * (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
    }

    private static void Q2_K(byte* x, float* y)
    {
        float d = Fp16.Load(x + 80), dmin = Fp16.Load(x + 82);
        for (int i = 0; i < 256; i++)
        {
            int n = i / 128, k = (i % 128) / 32, l = i % 32;
            byte sc = x[i / 16];
            int q = (x[16 + 32 * n + l] >> (2 * k)) & 3;
            y[i] = d * (sc & 0xF) * q - dmin * (sc >> 4);
        }
    }

    private static void Q3_K(byte* x, float* y)
    {
        float d = Fp16.Load(x + 108);
        sbyte* sc = stackalloc sbyte[16];
        KQuantScales.UnpackQ3K(x + 96, sc);
        for (int i = 0; i < 256; i++)
        {
            int n = i / 128, k = (i % 128) / 32, l = i % 32;
            int q = (x[32 + 32 * n + l] >> (2 * k)) & 3;
            if ((x[i % 32] & (1 << (i / 32))) == 0) q -= 4;
            y[i] = d * sc[i / 16] * q;
        }
    }
}
