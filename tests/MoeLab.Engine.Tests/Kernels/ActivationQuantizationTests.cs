using System.Buffers.Binary;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Tests.Kernels;

/// <summary>The activation forms match what ggml's CPU backend produces, byte for byte.</summary>
public class ActivationQuantizationTests
{
    // ggml-cpu x86 quantize_row_q8_0: d = amax/127 (stored fp16), q = round-half-even(x · 127/amax)
    private static byte[] GgmlQ8_0(float[] x)
    {
        var dst = new byte[x.Length / 32 * 34];
        for (int b = 0; b < x.Length / 32; b++)
        {
            float amax = 0;
            for (int j = 0; j < 32; j++) amax = Math.Max(amax, Math.Abs(x[32 * b + j]));
            BinaryPrimitives.WriteUInt16LittleEndian(dst.AsSpan(34 * b), BitConverter.HalfToUInt16Bits((Half)(amax / 127f)));
            float id = amax != 0 ? 127f / amax : 0f;
            for (int j = 0; j < 32; j++) dst[34 * b + 2 + j] = (byte)(sbyte)MathF.Round(x[32 * b + j] * id, MidpointRounding.ToEven);
        }
        return dst;
    }

    // ggml quantize_row_q8_K_ref: iscale = -127/max (max = the signed extreme), nearest_int, clamp 127, bsums of 16
    private static byte[] GgmlQ8_K(float[] x)
    {
        var dst = new byte[x.Length / 256 * 292];
        for (int b = 0; b < x.Length / 256; b++)
        {
            var blk = dst.AsSpan(292 * b, 292);
            float amax = 0, max = 0;
            for (int j = 0; j < 256; j++)
            {
                float ax = Math.Abs(x[256 * b + j]);
                if (ax > amax) { amax = ax; max = x[256 * b + j]; }
            }
            if (amax == 0) continue;
            float iscale = -127f / max;
            for (int j = 0; j < 256; j++) blk[4 + j] = (byte)(sbyte)Math.Min(127, (int)MathF.Round(iscale * x[256 * b + j], MidpointRounding.ToEven));
            for (int g = 0; g < 16; g++)
            {
                int s = 0;
                for (int i = 0; i < 16; i++) s += (sbyte)blk[4 + 16 * g + i];
                BinaryPrimitives.WriteInt16LittleEndian(blk[(260 + 2 * g)..], (short)s);
            }
            BinaryPrimitives.WriteSingleLittleEndian(blk, 1 / iscale);
        }
        return dst;
    }

    private static float[] Input(int n, int seed)
    {
        var x = KernelTestData.Gaussian(new Random(seed), n, 3f);
        // exact halves after scaling exercise the tie rule; a zero block exercises the zero scale
        for (int j = 0; j < 32; j++) x[32 + j] = 0;
        x[5] = 127f;
        x[6] = 0.5f;
        x[7] = -1.5f;
        return x;
    }

    [Theory]
    [InlineData(32)]
    [InlineData(256)]
    [InlineData(2048)]
    [InlineData(768)]
    public void Q8_0MatchesGgml(int n)
    {
        var x = Input(Math.Max(n, 64), n);
        var v = new QuantizedVector(x.Length);
        v.Set(x);
        var got = new byte[x.Length / 32 * 34];
        v.WriteQ8_0Blocks(got);
        Assert.Equal(GgmlQ8_0(x), got);
    }

    [Theory]
    [InlineData(256)]
    [InlineData(2048)]
    [InlineData(768)]
    public void Q8_KMatchesGgml(int n)
    {
        var x = Input(n, n);
        for (int j = 0; j < 256 && n >= 512; j++) x[256 + j] = 0; // an all-zero super-block
        var v = new QuantizedVector(x.Length);
        v.Set(x);
        var got = new byte[x.Length / 256 * 292];
        v.WriteQ8_KBlocks(got);
        Assert.Equal(GgmlQ8_K(x), got);
    }

    /// <summary>
    /// F16 and BF16 weights meet x rounded to their own type (ggml-cpu's vec_dot_type for them): round to nearest
    /// even, overflow to infinity; F32 weights meet x unrounded. Ties, an overflow and a NaN are included.
    /// </summary>
    [Fact]
    public unsafe void F16AndBf16WeightsMeetXRoundedToTheirType()
    {
        var x = KernelTestData.Gaussian(new Random(9), 256, 3f);
        x[0] = 1f + MathF.Pow(2, -11);                      // F16 tie between 1 and 1+2^-10: to even (1)
        x[1] = 1f + 3 * MathF.Pow(2, -11);                  // F16 tie: to even (1+2^-9)
        x[2] = 70000f;                                      // beyond F16's range: +inf
        x[3] = BitConverter.UInt32BitsToSingle(0x3F808000); // BF16 tie: to even (1)
        x[4] = BitConverter.UInt32BitsToSingle(0x3F818000); // BF16 tie: to even (0x3F82)
        x[5] = float.NaN;
        var v = new QuantizedVector(x.Length);
        v.Set(x);
        var f16 = v.Prepare(GgmlType.F16);
        var bf16 = v.Prepare(GgmlType.BF16);
        var f32 = v.Prepare(GgmlType.F32);
        Assert.Equal(1f, f16.F32[0]);
        Assert.Equal(1f + MathF.Pow(2, -9), f16.F32[1]);
        Assert.Equal(float.PositiveInfinity, f16.F32[2]);
        Assert.Equal(1f, bf16.F32[3]);
        Assert.Equal(BitConverter.UInt32BitsToSingle(0x3F820000), bf16.F32[4]);
        Assert.True(float.IsNaN(f16.F32[5]) && float.IsNaN(bf16.F32[5]));
        for (int i = 6; i < x.Length; i++)
        {
            Assert.Equal((float)(Half)x[i], f16.F32[i]);
            Assert.Equal(KernelTestData.NearestBf16(x[i]), bf16.F32[i]);
            Assert.Equal(x[i], f32.F32[i]);
        }
        Assert.NotEqual(x[6], f16.F32[6]); // the rounding happened (a Gaussian sample is not a half)
    }

    [Fact]
    public void SettingANewVectorInvalidatesThePreparedForms()
    {
        var v = new QuantizedVector(256);
        v.Set(KernelTestData.Gaussian(new Random(1), 256));
        var first = new byte[292];
        v.WriteQ8_KBlocks(first);
        var x2 = KernelTestData.Gaussian(new Random(2), 256);
        v.Set(x2);
        var second = new byte[292];
        v.WriteQ8_KBlocks(second);
        Assert.Equal(GgmlQ8_K(x2), second);
        Assert.NotEqual(first, second);
    }
}
