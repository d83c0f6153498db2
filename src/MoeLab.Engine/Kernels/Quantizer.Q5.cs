using System.Buffers.Binary;
using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>
/// Q4_1, Q5_0, Q5_1 and Q5_K, the formats llama-quantize's presets mix into Q4_K_M/Q5_K_* files and use as
/// fallbacks for rows that are not a multiple of 256; same reference algorithms as ggml-quants.c (no imatrix).
/// </summary>
public static partial class Quantizer
{
    private static void QuantizeQ5Block(GgmlType type, ReadOnlySpan<float> x, Span<byte> y)
    {
        switch (type)
        {
            case GgmlType.Q4_1: Q4_1(x, y); break;
            case GgmlType.Q5_0: Q5_0(x, y); break;
            case GgmlType.Q5_1: Q5_1(x, y); break;
            case GgmlType.Q5_K: Q5_K(x, y); break;
            default: throw new NotSupportedException($"no quantizer for ggml type {type}");
        }
    }

    // block_q4_1 { half d; half m; uint8 qs[16]; }: value = q*d + m with d = (max-min)/15, element j in the low
    // nibble of qs[j], j+16 in the high. Levels are truncated (q + 0.5), as the reference does.
    private static void Q4_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        MinMax(x, out float min, out float max);
        float d = (max - min) / 15;
        float id = d != 0 ? 1f / d : 0f;
        WriteHalf(y, 0, d);
        WriteHalf(y, 2, min);
        for (int j = 0; j < 16; j++)
        {
            int q0 = Math.Min(15, (int)((x[j] - min) * id + 0.5f));
            int q1 = Math.Min(15, (int)((x[j + 16] - min) * id + 0.5f));
            y[4 + j] = (byte)(q0 | (q1 << 4));
        }
    }

    // block_q5_0 { half d; uint32 qh; uint8 qs[16]; }: value = (q - 16) * d, low four bits as in Q4_0, bit 4 of
    // element j in bit j of qh. The signed extreme maps to -16 so all 32 levels are used.
    private static void Q5_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float max = SignedMax(x, out _);
        float d = max / -16;
        float id = d != 0 ? 1f / d : 0f;
        WriteHalf(y, 0, d);
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            int q0 = Math.Min(31, (int)(x[j] * id + 16.5f));
            int q1 = Math.Min(31, (int)(x[j + 16] * id + 16.5f));
            y[6 + j] = (byte)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint)((q0 >> 4) & 1) << j;
            qh |= (uint)((q1 >> 4) & 1) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(y[2..], qh);
    }

    // block_q5_1 { half d; half m; uint32 qh; uint8 qs[16]; }: value = q*d + m, d = (max-min)/31; the reference
    // does not clamp, so a level that rounds to 32 keeps only its low five bits (0), exactly as written here.
    private static void Q5_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        MinMax(x, out float min, out float max);
        float d = (max - min) / 31;
        float id = d != 0 ? 1f / d : 0f;
        WriteHalf(y, 0, d);
        WriteHalf(y, 2, min);
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            int q0 = (byte)(int)((x[j] - min) * id + 0.5f);
            int q1 = (byte)(int)((x[j + 16] - min) * id + 0.5f);
            y[8 + j] = (byte)((q0 & 0xF) | ((q1 & 0xF) << 4));
            qh |= (uint)((q0 >> 4) & 1) << j;
            qh |= (uint)((q1 >> 4) & 1) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(y[4..], qh);
    }

    // block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]; }: Q4_K's scales and fit with
    // levels 0..31; the low nibbles pack like Q4_K and bit 4 of sub-block j's element l is bit j of qh[l].
    private static void Q5_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[256];
        FitScaleMinK4(x, y, L, nmax: 31, rmin: -0.5f, nstep: 15);
        var qh = y.Slice(16, 32);
        var qs = y.Slice(48, 128);
        qh.Clear();
        for (int c = 0; c < 4; c++)
        {
            for (int l = 0; l < 32; l++)
            {
                int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
                qs[32 * c + l] = (byte)((lo & 0xF) | ((hi & 0xF) << 4));
                qh[l] |= (byte)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
        }
    }

    private static void MinMax(ReadOnlySpan<float> x, out float min, out float max)
    {
        min = float.MaxValue;
        max = -float.MaxValue;
        foreach (float v in x)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
    }
}
