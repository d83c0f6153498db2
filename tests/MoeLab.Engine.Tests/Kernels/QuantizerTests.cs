using System.Buffers.Binary;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Tests.Kernels;

public class QuantizerTests
{
    public static TheoryData<GgmlType> AllTypes() =>
        [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q8_K];

    /// <summary>
    /// Root-mean-square round-trip error on N(0,1) data, relative to σ. Bounds: a uniform quantizer with step Δ
    /// has RMS error Δ/√12. F16/BF16 keep 11/8 significant bits. Q8_0: Δ = amax/127 per 32 (amax ≈ 2σ) → 0.005.
    /// Q8_K: Δ = amax/127 per 256 (amax ≈ 3σ) → 0.007. Q6_K: Δ ≈ amax/32 per 16 (≈1.8σ) → 0.016. Q4_0: Δ = amax/8 →
    /// 0.07. Q4_K: 16 levels over a 32-value range (≈4.2σ) → 0.08. Q3_K: 8 levels per 16 → ≈0.13. Q2_K: 4 levels
    /// per 16 with a fitted offset → ≈0.3. Each bound below is that estimate with ~30% headroom.
    /// </summary>
    [Theory]
    [InlineData(GgmlType.F32, 0.0)]
    [InlineData(GgmlType.F16, 3e-4)]
    [InlineData(GgmlType.BF16, 3e-3)]
    [InlineData(GgmlType.Q8_0, 0.007)]
    [InlineData(GgmlType.Q8_K, 0.01)]
    [InlineData(GgmlType.Q6_K, 0.022)]
    [InlineData(GgmlType.Q4_0, 0.095)]
    [InlineData(GgmlType.Q4_K, 0.1)]
    [InlineData(GgmlType.Q3_K, 0.18)]
    [InlineData(GgmlType.Q2_K, 0.4)]
    public void RoundTripErrorIsWithinTheFormatsResolution(GgmlType type, double maxRelRms)
    {
        var rng = new Random(1234);
        int n = 256 * 64;
        var x = KernelTestData.Gaussian(rng, n);
        var q = new byte[GgmlTypeInfo.RowBytes(type, n)];
        Quantizer.QuantizeRow(type, x, q);
        var back = new float[n];
        Dequantizer.DequantizeRow(type, q, back);
        double se = 0;
        for (int i = 0; i < n; i++) se += (back[i] - x[i]) * (double)(back[i] - x[i]);
        double rms = Math.Sqrt(se / n);
        Assert.True(rms <= maxRelRms, $"{type}: relative RMS error {rms:G4} above {maxRelRms}");
        if (maxRelRms > 0) Assert.True(rms > maxRelRms / 20, $"{type}: error {rms:G4} implausibly small for its bit width");
    }

    /// <summary>Q8_0 and Q4_0 have hard per-element bounds: half a step, and for Q4_0 one step at the clamped end.</summary>
    [Theory]
    [InlineData(GgmlType.Q8_0)]
    [InlineData(GgmlType.Q4_0)]
    public void LegacyFormatsStayWithinOneStepPerElement(GgmlType type)
    {
        var rng = new Random(99);
        var x = KernelTestData.Gaussian(rng, 32 * 100, 0.02f);
        var q = new byte[GgmlTypeInfo.RowBytes(type, x.Length)];
        Quantizer.QuantizeRow(type, x, q);
        var back = new float[x.Length];
        Dequantizer.DequantizeRow(type, q, back);
        for (int b = 0; b < x.Length / 32; b++)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.Max(amax, Math.Abs(x[32 * b + j]));
            // the fp16 scale is off by ≤ 2^-11 relative, moving the largest level by ≤ 127·2^-11 (Q8_0) or 8·2^-11 steps
            double bound = type == GgmlType.Q8_0 ? amax / 127 * (0.5 + 127.0 / 2048) : amax / 8 * (1 + 8.0 / 2048);
            for (int j = 0; j < 32; j++)
                Assert.True(Math.Abs(back[32 * b + j] - x[32 * b + j]) <= bound * 1.0001, $"{type} block {b} elem {j}");
        }
    }

    [Theory]
    [MemberData(nameof(AllTypes))]
    public void ZerosRoundTripToZeros(GgmlType type)
    {
        var x = new float[256];
        var q = new byte[GgmlTypeInfo.RowBytes(type, 256)];
        Quantizer.QuantizeRow(type, x, q);
        var back = new float[256];
        back.AsSpan().Fill(1);
        Dequantizer.DequantizeRow(type, q, back);
        Assert.All(back, v => Assert.Equal(0f, v));
    }

    /// <summary>Hand-built blocks pin the bit layout to ggml-common.h (element order of nibbles and 2-bit fields).</summary>
    [Fact]
    public void HandBuiltBlocksDecodeAsGgmlDefinesThem()
    {
        // Q4_0: d = 0.5, qs[0] = 0x9F: element 0 = (15-8)·0.5, element 16 = (9-8)·0.5
        var q40 = new byte[18];
        BinaryPrimitives.WriteUInt16LittleEndian(q40, BitConverter.HalfToUInt16Bits((Half)0.5f));
        q40[2] = 0x9F;
        var y = new float[32];
        Dequantizer.DequantizeRow(GgmlType.Q4_0, q40, y);
        Assert.Equal(3.5f, y[0]);
        Assert.Equal(0.5f, y[16]);
        Assert.Equal(-4f, y[1]);

        // Q4_K: d = 1, dmin = 0, sub-block 1 scale = 2 (byte 1), sub-block 4 scale = 0x15 | (1 << 4) = low nibble from
        // byte 8 and top bits from byte 0's bits 6-7; qs[0] = 0x31: element 0 = 1·s0·1, element 32 = s1·3
        var q4k = new byte[144];
        BinaryPrimitives.WriteUInt16LittleEndian(q4k, BitConverter.HalfToUInt16Bits((Half)1f));
        q4k[4 + 0] = 1 | (1 << 6); // s0 = 1, top bits of s4 = 1
        q4k[4 + 1] = 2;            // s1 = 2
        q4k[4 + 8] = 0x05;         // s4 low nibble = 5 → s4 = 5 | 1<<4 = 21
        q4k[16] = 0x31;
        q4k[16 + 64] = 0x02;       // chunk 2 (sub-blocks 4, 5): element 128 = s4·2
        var yk = new float[256];
        Dequantizer.DequantizeRow(GgmlType.Q4_K, q4k, yk);
        Assert.Equal(1f, yk[0]);
        Assert.Equal(6f, yk[32]);
        Assert.Equal(42f, yk[128]);

        // Q6_K: d = 1, scales[2] = 3; ql[32] low nibble 5, qh[0] bits 2-3 = 2 → element 32 = 3·((5 | 2<<4) - 32) = 15
        var q6 = new byte[210];
        BinaryPrimitives.WriteUInt16LittleEndian(q6.AsSpan(208), BitConverter.HalfToUInt16Bits((Half)1f));
        q6[192 + 2] = 3;
        q6[32] = 5;
        q6[128] = 2 << 2;
        var y6 = new float[256];
        Dequantizer.DequantizeRow(GgmlType.Q6_K, q6, y6);
        Assert.Equal(15f, y6[32]);
        Assert.Equal(0f, y6[0]); // scale 0

        // Q2_K: scales[2] = 0x13 (scale 3, min 1), d = 1, dmin = 0.5, qs[0] bits 2-3 = 2 → element 32 = 3·2 - 0.5
        var q2 = new byte[84];
        q2[2] = 0x13;
        q2[16] = 2 << 2;
        BinaryPrimitives.WriteUInt16LittleEndian(q2.AsSpan(80), BitConverter.HalfToUInt16Bits((Half)1f));
        BinaryPrimitives.WriteUInt16LittleEndian(q2.AsSpan(82), BitConverter.HalfToUInt16Bits((Half)0.5f));
        var y2 = new float[256];
        Dequantizer.DequantizeRow(GgmlType.Q2_K, q2, y2);
        Assert.Equal(5.5f, y2[32]);

        // Q3_K: d = 1, scale 0 = (byte 0 low nibble 3 | top bits 2 from byte 8) - 32 = 35 - 32 = 3; element 0 has
        // its hmask bit set and low bits 1 → 3·1; element 1 has no hmask bit → 3·(0 - 4)
        var q3 = new byte[110];
        BinaryPrimitives.WriteUInt16LittleEndian(q3.AsSpan(108), BitConverter.HalfToUInt16Bits((Half)1f));
        q3[96] = 3;
        q3[96 + 8] = 2;
        q3[0] = 1;
        q3[32] = 1;
        var y3 = new float[256];
        Dequantizer.DequantizeRow(GgmlType.Q3_K, q3, y3);
        Assert.Equal(3f, y3[0]);
        Assert.Equal(-12f, y3[1]);
    }

    [Fact]
    public void RejectsRaggedRowsAndShortBuffers()
    {
        Assert.Throws<ArgumentException>(() => Quantizer.QuantizeRow(GgmlType.Q4_0, new float[33], new byte[100]));
        Assert.Throws<ArgumentException>(() => Quantizer.QuantizeRow(GgmlType.Q4_K, new float[256], new byte[143]));
        Assert.Throws<NotSupportedException>(() => Quantizer.QuantizeRow(GgmlType.IQ2_XS, new float[256], new byte[1000]));
        Assert.False(Quantizer.CanQuantize(GgmlType.IQ4_XS));
    }
}
