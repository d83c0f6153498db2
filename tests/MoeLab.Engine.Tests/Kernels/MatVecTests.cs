using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Tests.Kernels;

public class MatVecTests
{
    public static TheoryData<GgmlType, int> TypesAndTiers()
    {
        var data = new TheoryData<GgmlType, int>();
        foreach (var t in KernelTestData.WeightTypes)
            foreach (var isa in Enum.GetValues<KernelIsa>())
                data.Add(t, (int)isa);
        return data;
    }

    /// <summary>
    /// Every kernel against a double-precision dot of the dequantized row with the activation the kernel sees
    /// (F32 x, x rounded to F16/BF16, or x's Q8_0/Q8_K form). Block sums are exact integers in the kernels, so the only error is float
    /// rounding of one scale product and one accumulation per block: bounded by a few hundred float ulps of
    /// Σ|w·x| (1e-5 relative ≈ 170 ulp, for up to ~100 accumulated blocks and reordered vector sums).
    /// </summary>
    [Theory]
    [MemberData(nameof(TypesAndTiers))]
    public void AgreesWithDequantizeThenDotInDoublePrecision(GgmlType type, int tier)
    {
        var isa = (KernelIsa)tier;
        if (!KernelIsaInfo.IsSupported(isa)) return; // this CPU cannot run the tier
        int bs = KernelTestData.BlockSize(type);
        foreach (int blocks in new[] { 1, 2, 3, 5, 8, 24, 64 })
        {
            int cols = blocks * bs, rows = 21; // two 8-row groups and a tail of single rows
            using var m = KernelTestData.RandomMatrix(type, rows, cols, seed: 1000 + blocks);
            var x = new QuantizedVector(cols);
            x.Set(KernelTestData.Gaussian(new Random(blocks), cols, 0.7f));
            var y = new float[rows];
            MatVec.Multiply(isa, m.Matrix, x, y, 0, rows);
            var act = KernelTestData.KernelActivation(type, x);
            for (int r = 0; r < rows; r++)
            {
                var (dot, abs) = KernelTestData.Reference(type, m.Matrix.Row(r), act, x);
                double err = Math.Abs(y[r] - dot);
                Assert.True(err <= 1e-5 * abs + 1e-30, $"{type}/{isa} cols {cols} row {r}: got {y[r]:R}, want {dot:R} (|Δ| {err:G3}, Σ|wx| {abs:G3})");
            }
        }
    }

    /// <summary>
    /// A row range computes exactly the rows asked for, and each row's value does not depend on the range: rows
    /// 0..15 go through the 8-row group kernels in the full product but 3..10 and 11..18 are other groups and
    /// 19 a single row here (threads split rows at arbitrary chunk boundaries; results must not change).
    /// </summary>
    [Theory]
    [MemberData(nameof(TypesAndTiers))]
    public void WritesOnlyTheRequestedRowsWithTheSameValues(GgmlType type, int tier)
    {
        var isa = (KernelIsa)tier;
        if (!KernelIsaInfo.IsSupported(isa)) return;
        int cols = 512, rows = 22;
        using var m = KernelTestData.RandomMatrix(type, rows, cols, seed: 5);
        var x = new QuantizedVector(cols);
        x.Set(KernelTestData.Gaussian(new Random(6), cols));
        var all = new float[rows];
        MatVec.Multiply(isa, m.Matrix, x, all, 0, rows);
        var part = new float[rows];
        part.AsSpan().Fill(float.NaN);
        MatVec.Multiply(isa, m.Matrix, x, part, 3, 20);
        for (int r = 0; r < rows; r++)
        {
            if (r is >= 3 and < 20) Assert.Equal(all[r], part[r]);
            else Assert.True(float.IsNaN(part[r]));
        }
    }

    [Fact]
    public void ValidatesShapes()
    {
        using var m = KernelTestData.RandomMatrix(GgmlType.Q8_0, 4, 64, seed: 1);
        var x = new QuantizedVector(128);
        x.Set(new float[32]);
        Assert.Throws<ArgumentException>(() => MatVec.Multiply(m.Matrix, x, new float[4], 0, 4));
        x.Set(new float[64]);
        Assert.Throws<ArgumentException>(() => MatVec.Multiply(m.Matrix, x, new float[3], 0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => MatVec.Multiply(m.Matrix, x, new float[4], 2, 5));
    }

    [Fact]
    public void MatVecDoesNotAllocateAfterWarmUp()
    {
        using var m = KernelTestData.RandomMatrix(GgmlType.Q4_K, 64, 1024, seed: 2);
        using var q = KernelTestData.RandomMatrix(GgmlType.Q4_0, 64, 1024, seed: 3);
        var x = new QuantizedVector(1024);
        var xs = KernelTestData.Gaussian(new Random(4), 1024);
        var y = new float[64];
        double perCall = AllocationProbe.BytesPerCall(() =>
        {
            x.Set(xs);
            MatVec.Multiply(m.Matrix, x, y, 0, 64);
            MatVec.Multiply(q.Matrix, x, y, 0, 64);
        });
        Assert.True(perCall < AllocationProbe.NoPerCallAllocation, $"{perCall} bytes per call");
    }
}
