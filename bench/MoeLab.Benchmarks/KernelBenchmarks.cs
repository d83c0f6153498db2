using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Benchmarks;

/// <summary>
/// Decode matvec throughput per weight format: y = W·x for one activation vector, single thread and on the
/// <see cref="ComputePool"/>. Shapes are qwen3-30b-a3b's expert projections (gate/up 768×2048, down 2048×768) and a
/// 4096×4096 dense matrix. The matrix stays cache-resident across iterations (as in llama.cpp's
/// test-backend-ops perf mode); <see cref="KernelStreamingBenchmarks"/> measures weights streamed from RAM.
/// The GB/s column is weight bytes read per second.
/// </summary>
[Config(typeof(KernelBenchmarkConfig))]
public unsafe class KernelBenchmarks
{
    private byte* _data;
    private WeightMatrix _w;
    private QuantizedVector _x = null!;
    private float[] _y = null!;
    private ComputePool _pool = null!;

    [Params(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.F16)]
    public GgmlType Format { get; set; }

    [Params("768x2048", "2048x768", "4096x4096")]
    public string Shape { get; set; } = "";

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var (rows, cols) = KernelBenchmarkConfig.ParseShape(Shape);
        _data = KernelBenchmarkConfig.RandomMatrix(Format, rows, cols, 1, out _w);
        _x = KernelBenchmarkConfig.Input(cols, seed: 2);
        _y = new float[rows];
        _pool = new ComputePool(Threads);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        NativeMemory.AlignedFree(_data);
    }

    [Benchmark]
    public void MatVec()
    {
        if (Threads == 1) Engine.Kernels.MatVec.Multiply(_w, _x, _y, 0, _w.Rows);
        else _pool.MatVec(_w, _x, _y);
    }
}

/// <summary>
/// Expert matvecs with weights coming from RAM: cycles through enough distinct 768×2048 experts (≥ 256 MiB) that
/// none is cache-resident, as when a MoE decodes with all experts in memory.
/// </summary>
[Config(typeof(KernelBenchmarkConfig))]
public unsafe class KernelStreamingBenchmarks
{
    private const long WorkingSetBytes = 256L << 20;
    private byte* _data;
    private WeightMatrix[] _experts = [];
    private int _next;
    private QuantizedVector _x = null!;
    private float[] _y = null!;
    private ComputePool _pool = null!;

    [Params(GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.Q4_K)]
    public GgmlType Format { get; set; }

    public string Shape { get; set; } = "768x2048";

    [Params(1, 2)]
    public int Threads { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        int rows = 768, cols = 2048;
        long one = GgmlTypeInfo.RowBytes(Format, cols) * rows;
        int count = (int)((WorkingSetBytes + one - 1) / one);
        _data = KernelBenchmarkConfig.RandomMatrix(Format, rows * count, cols, 3, out _);
        _experts = new WeightMatrix[count];
        for (int i = 0; i < count; i++) _experts[i] = new WeightMatrix(Format, rows, cols, _data + i * one);
        _x = KernelBenchmarkConfig.Input(cols, seed: 4);
        _y = new float[rows];
        _pool = new ComputePool(Threads);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        NativeMemory.AlignedFree(_data);
    }

    [Benchmark]
    public void ExpertMatVec()
    {
        ref readonly var w = ref _experts[_next];
        _next = _next + 1 == _experts.Length ? 0 : _next + 1;
        if (Threads == 1) Engine.Kernels.MatVec.Multiply(w, _x, _y, 0, w.Rows);
        else _pool.MatVec(w, _x, _y);
    }
}

/// <summary>
/// The output head of qwen3-30b-a3b (151936×2048, 175 MB in Q4_0): the largest matvec of a decode step, streamed
/// from RAM every token. Interleaved as the engine loads it; in transparent huge pages or ordinary 4 KiB pages
/// (<see cref="WeightMemory"/>); on the calling thread alone or on a 2-thread <see cref="ComputePool"/>.
/// </summary>
[Config(typeof(KernelBenchmarkConfig))]
public unsafe class HeadMatVecBenchmarks
{
    private byte* _data;
    private WeightMatrix _w;
    private QuantizedVector _x = null!;
    private float[] _y = null!;
    private ComputePool _pool = null!;

    [Params(GgmlType.Q4_0)]
    public GgmlType Format { get; set; }

    [Params("151936x2048")]
    public string Shape { get; set; } = "";

    [Params(1, 2)]
    public int Threads { get; set; }

    [Params(false, true)]
    public bool HugePages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var (rows, cols) = KernelBenchmarkConfig.ParseShape(Shape);
        byte* random = KernelBenchmarkConfig.RandomMatrix(Format, rows, cols, 5, out var w);
        _data = WeightMemory.Allocate(w.TotalBytes, HugePages);
        Buffer.MemoryCopy(random, _data, w.TotalBytes, w.TotalBytes);
        NativeMemory.AlignedFree(random);
        _w = RowInterleave.InterleaveIfWorthwhile(new WeightMatrix(Format, rows, cols, _data));
        _x = KernelBenchmarkConfig.Input(cols, seed: 6);
        _y = new float[rows];
        _pool = new ComputePool(Threads);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        WeightMemory.Free(_data);
    }

    [Benchmark]
    public void HeadMatVec() => _pool.MatVec(_w, _x, _y);
}

public sealed class KernelBenchmarkConfig : ManualConfig
{
    public KernelBenchmarkConfig() => AddColumn(new WeightBandwidthColumn());

    public static (int Rows, int Cols) ParseShape(string shape)
    {
        var parts = shape.Split('x');
        return (int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>A quantized input vector of uniform random values in [-1, 1) (the kernels' time does not depend on them).</summary>
    public static QuantizedVector Input(int cols, int seed)
    {
        var rng = new Random(seed);
        var xs = new float[cols];
        for (int i = 0; i < cols; i++) xs[i] = (float)(rng.NextDouble() * 2 - 1);
        var x = new QuantizedVector(cols);
        x.Set(xs);
        return x;
    }

    /// <summary>A matrix of Gaussian-ish random weights quantized to <paramref name="type"/>, in 64-byte aligned native memory.</summary>
    public static unsafe byte* RandomMatrix(GgmlType type, int rows, int cols, int seed, out WeightMatrix w)
    {
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        var data = (byte*)NativeMemory.AlignedAlloc((nuint)(rowBytes * rows), 64);
        var rng = new Random(seed);
        var x = new float[cols];
        var template = new byte[rowBytes * Math.Min(rows, 64)];
        // quantizing is slow (K-quant fitting); 64 distinct rows repeated fill any size with real block contents
        for (int r = 0; r < Math.Min(rows, 64); r++)
        {
            for (int i = 0; i < cols; i++) x[i] = (float)((rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5) * 0.05);
            Quantizer.QuantizeRow(type, x, template.AsSpan((int)(r * rowBytes), (int)rowBytes));
        }
        for (int r = 0; r < rows; r += 64)
        {
            int n = Math.Min(64, rows - r);
            template.AsSpan(0, (int)(n * rowBytes)).CopyTo(new Span<byte>(data + r * rowBytes, (int)(n * rowBytes)));
        }
        w = new WeightMatrix(type, rows, cols, data);
        return data;
    }
}

/// <summary>Weight bytes per second of one matvec: the figure that compares against memory bandwidth.</summary>
public sealed class WeightBandwidthColumn : IColumn
{
    public string Id => nameof(WeightBandwidthColumn);
    public string ColumnName => "Weights GB/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Weight bytes read per second (10^9 B/s)";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is null) return "-";
        var type = (GgmlType)benchmarkCase.Parameters["Format"];
        string shape = benchmarkCase.Parameters.Items.Any(p => p.Name == "Shape") ? (string)benchmarkCase.Parameters["Shape"] : "768x2048";
        var (rows, cols) = KernelBenchmarkConfig.ParseShape(shape);
        double bytes = GgmlTypeInfo.RowBytes(type, cols) * (double)rows;
        return (bytes / report.ResultStatistics.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
