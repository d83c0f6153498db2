using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Tests.Kernels;

/// <summary>
/// The 8-row interleaved layout: its kernels give exactly the row layout's values of the same tier (for Q4_K the
/// AVX2 one-row kernel, the interleaved one and the scalar tier all keep one per-super-block float expression), and agree with the dequantize-then-dot reference, for whole
/// groups and for row ranges that cut groups; the repack is a lossless permutation of the bytes.
/// </summary>
public class RowInterleaveTests
{
    public static TheoryData<GgmlType, int> TypesAndTiers()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var t in new[] { GgmlType.Q4_0, GgmlType.Q4_K })
            foreach (var isa in Enum.GetValues<KernelIsa>())
                data.Add(t, (int)isa);
        return data;
    }

    [Theory]
    [MemberData(nameof(TypesAndTiers))]
    public void InterleavedRowsEqualTheRowLayoutBitForBitAndAgreeWithTheReference(GgmlType type, int tier)
    {
        var isa = (KernelIsa)tier;
        if (!KernelIsaInfo.IsSupported(isa)) return;
        int bs = KernelTestData.BlockSize(type);
        foreach (int blocks in new[] { 1, 2, 3, 5, 8, 24, 64 })
        {
            int cols = blocks * bs, rows = 24;
            using var plain = KernelTestData.RandomMatrix(type, rows, cols, seed: 300 + blocks);
            using var packed = KernelTestData.RandomMatrix(type, rows, cols, seed: 300 + blocks);
            var interleaved = RowInterleave.Interleave(packed.Matrix);
            Assert.Equal(WeightLayout.Interleaved8, interleaved.Layout);
            Assert.False(plain.Matrix.All.SequenceEqual(packed.Matrix.All), "the repack moved no byte");
            var x = new QuantizedVector(cols);
            x.Set(KernelTestData.Gaussian(new Random(blocks), cols, 0.7f));
            var want = new float[rows];
            var got = new float[rows];
            MatVec.Multiply(isa, plain.Matrix, x, want, 0, rows);
            if (type == GgmlType.Q4_K && isa >= KernelIsa.Avx2)
            {
                var scalar = new float[rows];
                MatVec.Multiply(KernelIsa.Scalar, plain.Matrix, x, scalar, 0, rows);
                Assert.Equal(scalar, want);
            }

            MatVec.Multiply(isa, interleaved, x, got, 0, rows);
            Assert.Equal(want, got);
            var act = KernelTestData.KernelActivation(type, x);
            for (int r = 0; r < rows; r++)
            {
                var (dot, abs) = KernelTestData.Reference(type, plain.Matrix.Row(r), act, x);
                Assert.True(Math.Abs(got[r] - dot) <= 1e-5 * abs + 1e-30, $"{type}/{isa} cols {cols} row {r}: got {got[r]:R}, want {dot:R}");
            }

            // ranges that start and end inside groups write exactly their rows, with the same values
            var part = new float[rows];
            part.AsSpan().Fill(float.NaN);
            MatVec.Multiply(isa, interleaved, x, part, 3, 21);
            for (int r = 0; r < rows; r++)
            {
                if (r is >= 3 and < 21) Assert.Equal(want[r], part[r]);
                else Assert.True(float.IsNaN(part[r]), $"row {r} outside the range was written");
            }
        }
    }

    [Theory]
    [InlineData(GgmlType.Q4_0)]
    [InlineData(GgmlType.Q4_K)]
    public unsafe void DeinterleavingRestoresEveryByte(GgmlType type)
    {
        int rows = 16, cols = 512;
        using var original = KernelTestData.RandomMatrix(type, rows, cols, seed: 9);
        using var m = KernelTestData.RandomMatrix(type, rows, cols, seed: 9);
        var interleaved = RowInterleave.Interleave(m.Matrix);
        var restored = new byte[rows * m.Matrix.RowBytes];
        int groupBytes = RowInterleave.GroupRows * m.Matrix.RowBytes;
        fixed (byte* dst = restored)
        {
            for (int g = 0; g < rows / RowInterleave.GroupRows; g++)
                RowInterleave.DeinterleaveGroup(type, interleaved.Data + (g * groupBytes), m.Matrix.RowBytes, cols, dst + (g * groupBytes));
        }
        Assert.Equal(original.Matrix.All.ToArray(), restored);
    }

    [Fact]
    public void RefusesWhatItCannotRepack()
    {
        using var ragged = KernelTestData.RandomMatrix(GgmlType.Q4_0, 12, 64, seed: 1);
        Assert.Throws<ArgumentException>(() => RowInterleave.Interleave(ragged.Matrix));
        Assert.False(RowInterleave.Worthwhile(ragged.Matrix));
        using var q6 = KernelTestData.RandomMatrix(GgmlType.Q6_K, 8, 256, seed: 1);
        Assert.Throws<NotSupportedException>(() => RowInterleave.Interleave(q6.Matrix));
        using var m = KernelTestData.RandomMatrix(GgmlType.Q4_0, 8, 64, seed: 1);
        var interleaved = RowInterleave.Interleave(m.Matrix);
        Assert.Throws<InvalidOperationException>(() => interleaved.Row(0).Length);
    }
}
