using System.Buffers.Binary;
using System.Runtime.InteropServices;
using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>
/// Reference quantizers writing ggml's block layouts bit for bit (ggml-common.h), following the reference
/// algorithms of ggml-quants.c (quantize_row_*_ref) so that files written here load and behave in llama.cpp.
/// Not a hot path: used by model synthesis and requantization.
/// </summary>
public static partial class Quantizer
{
    private const float GroupMaxEps = 1e-15f;

    public static bool CanQuantize(GgmlType type) => type is GgmlType.F32 or GgmlType.F16 or GgmlType.BF16
        or GgmlType.Q8_0 or GgmlType.Q4_0 or GgmlType.Q4_K or GgmlType.Q6_K or GgmlType.Q2_K or GgmlType.Q3_K
        or GgmlType.Q8_K or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1 or GgmlType.Q5_K;

    /// <summary>Quantizes one row; <paramref name="src"/>'s length must be a multiple of the type's block size.</summary>
    public static void QuantizeRow(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (!CanQuantize(type)) throw new NotSupportedException($"no quantizer for ggml type {type}");
        long need = GgmlTypeInfo.RowBytes(type, src.Length);
        if (dst.Length < need) throw new ArgumentException($"{type} row of {src.Length} needs {need} bytes, got {dst.Length}", nameof(dst));
        int bs = GgmlTypeInfo.BlockSize(type), bb = GgmlTypeInfo.BlockBytes(type);
        int nb = src.Length / bs;
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.AsBytes(src).CopyTo(dst);
                return;
            case GgmlType.F16:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], Fp16.FromFloat(src[i]));
                return;
            case GgmlType.BF16:
                for (int i = 0; i < src.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(dst[(2 * i)..], Fp16.ToBf16(src[i]));
                return;
        }
        for (int b = 0; b < nb; b++)
        {
            var x = src.Slice(b * bs, bs);
            var y = dst.Slice(b * bb, bb);
            switch (type)
            {
                case GgmlType.Q8_0: Q8_0(x, y); break;
                case GgmlType.Q4_0: Q4_0(x, y); break;
                case GgmlType.Q4_K: Q4_K(x, y); break;
                case GgmlType.Q6_K: Q6_K(x, y); break;
                case GgmlType.Q2_K: Q2_K(x, y); break;
                case GgmlType.Q3_K: Q3_K(x, y); break;
                case GgmlType.Q8_K: Q8_K(x, y); break;
                default: QuantizeQ5Block(type, x, y); break;
            }
        }
    }

    /// <summary>ggml's nearest_int: round half to even (the magic-number trick), valid for |f| below 2^22.</summary>
    internal static int NearestInt(float f) => (int)MathF.Round(f);

    private static void WriteHalf(Span<byte> y, int offset, float v) => BinaryPrimitives.WriteUInt16LittleEndian(y[offset..], Fp16.FromFloat(v));

    private static float ReadHalf(Span<byte> y, int offset) => Fp16.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(y[offset..]));

    /// <summary>The element of largest magnitude, with its sign (the first of equals, as ggml scans); its magnitude in <paramref name="amax"/>.</summary>
    private static float SignedMax(ReadOnlySpan<float> x, out float amax)
    {
        float max = 0;
        amax = 0;
        foreach (float v in x)
        {
            if (MathF.Abs(v) > amax) { amax = MathF.Abs(v); max = v; }
        }

        return max;
    }

    // block_q8_0 { half d; int8 qs[32]; }: symmetric, d = amax/127.
    private static void Q8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        WriteHalf(y, 0, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    // block_q4_0 { half d; uint8 qs[16]; }: value = (q - 8) * d, element j in the low nibble of qs[j], j+16 in the high.
    // The scale maps the signed extreme to -8 so the full 16 levels are used.
    private static void Q4_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float max = SignedMax(x, out _);
        float d = max / -8f;
        float id = d != 0 ? 1f / d : 0f;
        WriteHalf(y, 0, d);
        for (int j = 0; j < 16; j++)
        {
            int q0 = Math.Min(15, (int)(x[j] * id + 8.5f));
            int q1 = Math.Min(15, (int)(x[j + 16] * id + 8.5f));
            y[2 + j] = (byte)(q0 | (q1 << 4));
        }
    }

    // block_q8_K { float d; int8 qs[256]; int16 bsums[16]; }: the activation format of the K-quant dot products.
    private static void Q8_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        float max = SignedMax(x, out float amax);
        y.Clear();
        if (amax == 0) return;
        float iscale = -127f / max;
        for (int j = 0; j < 256; j++) y[4 + j] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * x[j]));
        for (int g = 0; g < 16; g++)
        {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += (sbyte)y[4 + 16 * g + i];
            BinaryPrimitives.WriteInt16LittleEndian(y[(260 + 2 * g)..], (short)sum);
        }
        BinaryPrimitives.WriteSingleLittleEndian(y, 1 / iscale);
    }

    // block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }: 8 sub-blocks of 32 with 6-bit scale and
    // min each; value = d*sc*q - dmin*m.
    private static void Q4_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[256];
        FitScaleMinK4(x, y, L, nmax: 15, rmin: -1f, nstep: 20);
        var qs = y.Slice(16, 128);
        for (int c = 0; c < 4; c++)
        {
            for (int l = 0; l < 32; l++) qs[32 * c + l] = (byte)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
        }
    }

    /// <summary>
    /// Q4_K's and Q5_K's scales (levels 0..<paramref name="nmax"/>): per sub-block of 32 a weighted least-squares fit of
    /// (scale, min) (make_qkx2_quants), the eight pairs packed as 6-bit values into y[4..16] under the super-block's d
    /// and dmin (y[0..4]), then each element's level against the packed, rounded scales into <paramref name="L"/>.
    /// </summary>
    private static void FitScaleMinK4(ReadOnlySpan<float> x, Span<byte> y, Span<byte> L, int nmax, float rmin, int nstep)
    {
        Span<byte> laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            var xs = x.Slice(32 * j, 32);
            float sumX2 = 0;
            foreach (float v in xs) sumX2 += v * v;
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(xs[l]);
            scales[j] = MakeQkx2Quants(nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], laux, rmin, 0.1f, nstep, false);
            maxScale = MathF.Max(maxScale, scales[j]);
            maxMin = MathF.Max(maxMin, mins[j]);
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        var packed = y.Slice(4, 12);
        packed.Clear();
        for (int j = 0; j < 8; j++)
        {
            int ls = Math.Min(63, NearestInt(invScale * scales[j]));
            int lm = Math.Min(63, NearestInt(invMin * mins[j]));
            if (j < 4)
            {
                packed[j] = (byte)ls;
                packed[j + 4] = (byte)lm;
            }
            else
            {
                packed[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
        }
        WriteHalf(y, 0, maxScale / 63f);
        WriteHalf(y, 2, maxMin / 63f);
        float d = ReadHalf(y, 0), dmin = ReadHalf(y, 2);
        for (int j = 0; j < 8; j++)
        {
            ScaleMinK4(j, packed, out int sc, out int m);
            float ds = d * sc;
            if (ds == 0) continue;
            float dm = dmin * m;
            for (int i = 0; i < 32; i++) L[32 * j + i] = (byte)Math.Clamp(NearestInt((x[32 * j + i] + dm) / ds), 0, nmax);
        }
    }

    internal static void ScaleMinK4(int j, ReadOnlySpan<byte> q, out int sc, out int m)
    {
        if (j < 4)
        {
            sc = q[j] & 63;
            m = q[j + 4] & 63;
        }
        else
        {
            sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
            m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
        }
    }

    // block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }: 16 sub-blocks of 16, 6-bit values
    // stored +32 (low nibble in ql, top two bits in qh), int8 scale per sub-block.
    private static void Q6_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<sbyte> L = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int j = 0; j < 16; j++)
        {
            float s = MakeQxQuants(32, x.Slice(16 * j, 16), L.Slice(16 * j, 16));
            scales[j] = s;
            if (MathF.Abs(s) > maxAbsScale) { maxAbsScale = MathF.Abs(s); maxScale = s; }
        }
        y.Clear();
        if (maxAbsScale < GroupMaxEps) return;
        float iscale = -128f / maxScale;
        WriteHalf(y, 208, 1 / iscale);
        for (int j = 0; j < 16; j++) y[192 + j] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[j]));
        float d0 = ReadHalf(y, 208);
        for (int j = 0; j < 16; j++)
        {
            float d = d0 * (sbyte)y[192 + j];
            if (d == 0) continue;
            for (int i = 0; i < 16; i++) L[16 * j + i] = (sbyte)(Math.Clamp(NearestInt(x[16 * j + i] / d), -32, 31) + 32);
        }
        for (int n = 0; n < 2; n++)
        {
            var ql = y.Slice(64 * n, 64);
            var qh = y.Slice(128 + 32 * n, 32);
            var l = L.Slice(128 * n, 128);
            for (int i = 0; i < 32; i++)
            {
                int q1 = l[i], q2 = l[i + 32], q3 = l[i + 64], q4 = l[i + 96];
                ql[i] = (byte)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[i + 32] = (byte)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[i] = (byte)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }

    // block_q2_K { uint8 scales[16]; uint8 qs[64]; half d; half dmin; }: 16 sub-blocks of 16 with 4-bit scale and
    // 4-bit min; 2-bit values, four per byte (element 32*k + l of each 128-half in bits 2k of byte l).
    private static void Q2_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<byte> L = stackalloc byte[256];
        Span<byte> laux = stackalloc byte[16];
        Span<float> weights = stackalloc float[16];
        Span<float> mins = stackalloc float[16];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 16; j++)
        {
            var xs = x.Slice(16 * j, 16);
            for (int l = 0; l < 16; l++) weights[l] = MathF.Abs(xs[l]);
            scales[j] = MakeQkx2Quants(3, xs, weights, L.Slice(16 * j, 16), out mins[j], laux, -0.5f, 0.1f, 15, true);
            maxScale = MathF.Max(maxScale, scales[j]);
            maxMin = MathF.Max(maxMin, mins[j]);
        }
        y.Clear();
        var sc = y[..16];
        if (maxScale > 0)
        {
            float iscale = 15f / maxScale;
            for (int j = 0; j < 16; j++) sc[j] = (byte)NearestInt(iscale * scales[j]);
            WriteHalf(y, 80, maxScale / 15f);
        }
        if (maxMin > 0)
        {
            float iscale = 15f / maxMin;
            for (int j = 0; j < 16; j++) sc[j] |= (byte)(NearestInt(iscale * mins[j]) << 4);
            WriteHalf(y, 82, maxMin / 15f);
        }
        float d0 = ReadHalf(y, 80), dmin0 = ReadHalf(y, 82);
        for (int j = 0; j < 16; j++)
        {
            float d = d0 * (sc[j] & 0xF);
            if (d == 0) continue;
            float dm = dmin0 * (sc[j] >> 4);
            for (int i = 0; i < 16; i++) L[16 * j + i] = (byte)Math.Clamp(NearestInt((x[16 * j + i] + dm) / d), 0, 3);
        }
        PackTwoBit(L, y.Slice(16, 64));
    }

    private static void PackTwoBit(ReadOnlySpan<byte> L, Span<byte> qs)
    {
        for (int n = 0; n < 2; n++)
        {
            for (int l = 0; l < 32; l++)
            {
                int j = 128 * n + l;
                qs[32 * n + l] = (byte)(L[j] | (L[j + 32] << 2) | (L[j + 64] << 4) | (L[j + 96] << 6));
            }
        }
    }

    // block_q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; half d; }: 16 sub-blocks of 16, signed 6-bit
    // scales; 3-bit values = 2 low bits in qs (as Q2_K) + a high bit in hmask (element i: byte i%32, bit i/32).
    private static void Q3_K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<sbyte> L = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, amax = 0;
        for (int j = 0; j < 16; j++)
        {
            scales[j] = MakeQ3Quants(4, x.Slice(16 * j, 16), L.Slice(16 * j, 16));
            if (MathF.Abs(scales[j]) > amax) { amax = MathF.Abs(scales[j]); maxScale = scales[j]; }
        }
        y.Clear();
        var packed = y.Slice(96, 12);
        if (maxScale != 0)
        {
            float iscale = -32f / maxScale;
            for (int j = 0; j < 16; j++)
            {
                int l = Math.Clamp(NearestInt(iscale * scales[j]), -32, 31) + 32;
                if (j < 8) packed[j] = (byte)(l & 0xF);
                else packed[j - 8] |= (byte)((l & 0xF) << 4);
                packed[8 + (j & 3)] |= (byte)((l >> 4) << (2 * (j >> 2)));
            }
            WriteHalf(y, 108, 1 / iscale);
        }
        float d0 = ReadHalf(y, 108);
        for (int j = 0; j < 16; j++)
        {
            int lo = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
            int sc = (lo | (((packed[8 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
            float d = d0 * sc;
            if (d == 0) continue;
            for (int i = 0; i < 16; i++) L[16 * j + i] = (sbyte)(Math.Clamp(NearestInt(x[16 * j + i] / d), -4, 3) + 4);
        }
        var hmask = y[..32];
        Span<byte> low = stackalloc byte[256];
        for (int i = 0; i < 256; i++)
        {
            int l = L[i];
            if (l > 3)
            {
                hmask[i % 32] |= (byte)(1 << (i / 32));
                l -= 4;
            }
            low[i] = (byte)l;
        }
        PackTwoBit(low, y.Slice(32, 64));
    }

    // make_qx_quants (rmse_type 1, no importance): symmetric levels in [-nmax, nmax-1], scale refined by a search
    // over 18 nearby inverse scales maximizing the x²-weighted fit. Writes levels + nmax.
    private static float MakeQxQuants(int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = SignedMax(x, out float amax);
        if (amax < GroupMaxEps)
        {
            L.Clear();
            return 0;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            L[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < x.Length; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < x.Length; i++) L[i] = (sbyte)(nmax + Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    // make_q3_quants with rmse: start from the max-based levels, then up to 5 rounds of coordinate descent on
    // single levels while the x²-weighted fit improves. Writes levels + nmax.
    private static float MakeQ3Quants(int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = SignedMax(x, out float amax);
        if (amax < GroupMaxEps)
        {
            L.Clear();
            return 0;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            L[i] = (sbyte)l;
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int round = 0; round < 5; round++)
        {
            int changed = 0;
            for (int i = 0; i < x.Length; i++)
            {
                float w = x[i] * x[i];
                float slx = sumlx - w * x[i] * L[i];
                if (slx > 0)
                {
                    float sl2 = suml2 - w * L[i] * L[i];
                    int newL = Math.Clamp(NearestInt(x[i] * sl2 / slx), -nmax, nmax - 1);
                    if (newL != L[i])
                    {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2)
                        {
                            L[i] = (sbyte)newL;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        for (int i = 0; i < x.Length; i++) L[i] += (sbyte)nmax;
        return suml2 > 0 ? sumlx / suml2 : 0f;
    }

    // make_qkx2_quants: asymmetric levels 0..nmax with a (scale, min) pair; tries nstep+1 inverse scales around
    // nmax/(max-min) and keeps the weighted least-squares solution with the smallest weighted error.
    private static float MakeQkx2Quants(int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> L,
        out float theMin, Span<byte> laux, float rmin, float rdelta, int nstep, bool useMad)
    {
        int n = x.Length;
        float min = x[0], max = x[0];
        float sumW = weights[0], sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            sumW += weights[i];
            sumX += weights[i] * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            L[..n].Clear();
            theMin = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
            L[i] = (byte)l;
            float diff = scale * l + min - x[i];
            diff = useMad ? MathF.Abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * (x[i] - min)), 0, nmax);
                laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float err = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * laux[i] + thisMin - x[i];
                    diff = useMad ? MathF.Abs(diff) : diff * diff;
                    err += weights[i] * diff;
                }
                if (err < bestError)
                {
                    laux[..n].CopyTo(L);
                    bestError = err;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }
}
