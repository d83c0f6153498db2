using System.Runtime.InteropServices;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Tests.Kernels;

/// <summary>Deterministic weights and activations for the kernel tests, and an owned native buffer for matrices.</summary>
internal static class KernelTestData
{
    public static readonly GgmlType[] WeightTypes =
        [GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q2_K, GgmlType.Q3_K,
         GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q5_K];

    public static int BlockSize(GgmlType type) => GgmlTypeInfo.BlockSize(type) == 1 ? 32 : GgmlTypeInfo.BlockSize(type);

    public static float[] Gaussian(Random rng, int n, float sigma = 1f)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
            x[i] = (float)(sigma * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }

    /// <summary>Rows of Gaussian weights, each row with its own scale (real matrices vary by orders of magnitude).</summary>
    public static NativeMatrix RandomMatrix(GgmlType type, int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var m = new NativeMatrix(type, rows, cols);
        for (int r = 0; r < rows; r++)
        {
            float sigma = (float)Math.Pow(10, rng.NextDouble() * 4 - 3);
            var x = Gaussian(rng, cols, sigma);
            if (r % 3 == 1) x[rng.Next(cols)] *= 8; // an outlier stresses the block scales
            Quantizer.QuantizeRow(type, x, m.RowSpan(r));
        }
        return m;
    }

    /// <summary>
    /// Double-precision dot of a dequantized row with the dequantized activation the kernel sees. Q4_1/Q5_1 meet
    /// Q8_1 as in ggml: a block's min m multiplies the stored block sum s (fp16 of the unrounded d times Σq), not
    /// Σ of the dequantized activations, so the reference takes m·s for that term.
    /// </summary>
    public static (double Dot, double AbsSum) Reference(GgmlType type, ReadOnlySpan<byte> row, ReadOnlySpan<float> act, QuantizedVector x)
    {
        var (dot, abs) = Reference(type, row, act);
        if (type is not (GgmlType.Q4_1 or GgmlType.Q5_1)) return (dot, abs);
        var q81 = new byte[act.Length / 32 * 36];
        x.WriteQ8_1Blocks(q81);
        int bb = GgmlTypeInfo.BlockBytes(type);
        for (int b = 0; b < act.Length / 32; b++)
        {
            double m = Fp16.ToFloat(BitConverter.ToUInt16(row.Slice(bb * b + 2, 2)));
            double s = Fp16.ToFloat(BitConverter.ToUInt16(q81.AsSpan(36 * b + 2, 2)));
            double sumAct = 0;
            for (int j = 0; j < 32; j++) sumAct += act[32 * b + j];
            dot += m * (s - sumAct);
            abs += Math.Abs(m * s);
        }
        return (dot, abs);
    }

    public static (double Dot, double AbsSum) Reference(GgmlType type, ReadOnlySpan<byte> row, ReadOnlySpan<float> act)
    {
        var w = new float[act.Length];
        Dequantizer.DequantizeRow(type, row, w);
        double dot = 0, abs = 0;
        for (int i = 0; i < w.Length; i++)
        {
            dot += (double)w[i] * act[i];
            abs += Math.Abs((double)w[i] * act[i]);
        }
        return (dot, abs);
    }

    /// <summary>The BF16 value nearest to <paramref name="v"/> (ties to the even mantissa), found by comparing the two neighbours.</summary>
    public static float NearestBf16(float v)
    {
        if (float.IsNaN(v)) return v;
        uint u = BitConverter.SingleToUInt32Bits(v);
        float lo = BitConverter.UInt32BitsToSingle(u & 0xFFFF0000), hi = BitConverter.UInt32BitsToSingle((u & 0xFFFF0000) + 0x10000);
        double dl = Math.Abs((double)v - lo), dh = Math.Abs((double)v - hi);
        if (float.IsInfinity(hi) && !float.IsInfinity(v)) dh = Math.Abs((double)v - Math.CopySign(Math.Pow(2, 128), v));
        if (dl != dh) return dl < dh ? lo : hi;
        return ((u >> 16) & 1) == 0 ? lo : hi;
    }

    /// <summary>What the kernels of <paramref name="weightType"/> dot against: x itself, x rounded to F16/BF16, or its Q8_0/Q8_K form.</summary>
    public static float[] KernelActivation(GgmlType weightType, QuantizedVector x)
    {
        var act = new float[x.Length];
        switch (weightType)
        {
            case GgmlType.Q4_0 or GgmlType.Q8_0 or GgmlType.Q5_0 or GgmlType.Q4_1 or GgmlType.Q5_1:
                var b8 = new byte[x.Length / 32 * 34];
                x.WriteQ8_0Blocks(b8);
                Dequantizer.DequantizeRow(GgmlType.Q8_0, b8, act);
                break;
            case GgmlType.Q4_K or GgmlType.Q6_K or GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q5_K:
                var bk = new byte[x.Length / 256 * 292];
                x.WriteQ8_KBlocks(bk);
                Dequantizer.DequantizeRow(GgmlType.Q8_K, bk, act);
                break;
            case GgmlType.F16:
                for (int i = 0; i < act.Length; i++) act[i] = (float)(Half)x.Values[i];
                break;
            case GgmlType.BF16:
                for (int i = 0; i < act.Length; i++) act[i] = NearestBf16(x.Values[i]);
                break;
            default:
                x.Values.CopyTo(act);
                break;
        }
        return act;
    }
}

/// <summary>A matrix in unmanaged memory, as the engine holds weights (mmap or aligned buffers).</summary>
internal sealed unsafe class NativeMatrix : IDisposable
{
    private readonly byte* _data;

    public NativeMatrix(GgmlType type, int rows, int cols)
    {
        long bytes = GgmlTypeInfo.RowBytes(type, cols) * rows;
        _data = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        new Span<byte>(_data, (int)bytes).Clear();
        Matrix = new WeightMatrix(type, rows, cols, _data);
    }

    public WeightMatrix Matrix { get; }

    public Span<byte> RowSpan(int r) => new(_data + (long)r * Matrix.RowBytes, Matrix.RowBytes);

    public void Dispose() => NativeMemory.AlignedFree(_data);
}
