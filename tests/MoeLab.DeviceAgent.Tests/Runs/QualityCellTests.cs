using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.DeviceAgent.Tests.Runs;

/// <summary>A cell with measure_quality reports KL, top-1 agreement and perplexity: zero cost when exact, a real cost when lossy.</summary>
public sealed class QualityCellTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-quality-cell-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Model()
    {
        string path = Path.Combine(_dir, "tiny.gguf");
        if (!File.Exists(path)) ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.Q8_0, Seed: 4), path);
        return path;
    }

    private static RunCell Cell(string routing = "unchanged", string precision = "native", bool quality = true) => new()
    {
        CellId = "q",
        Experiment = "quality",
        Model = "tiny.gguf",
        Prompts = ["The expert cache"],
        GenerateTokens = 4,
        BudgetBytes = 96 << 10,
        IoMode = "buffered",
        Threads = 1,
        Routing = routing,
        Precision = precision,
        MeasureQuality = quality,
        QualityTokens = 48,
    };

    [Fact]
    public void An_exact_cell_costs_nothing_and_its_logits_are_bit_identical()
    {
        var r = EngineCellRunner.Run(Cell(), Model(), null, null, CancellationToken.None);
        Assert.Equal(47, r.QualityPositions);
        Assert.Equal(0, r.MeanKlDivergence);
        Assert.Equal(1, r.Top1Agreement);
        Assert.Equal(r.QualityPositions, r.IdenticalLogitPositions);
        Assert.Equal(r.ExactPerplexity, r.Perplexity);
        Assert.True(r.Perplexity > 1);
    }

    [Fact]
    public void Top_k_reduction_costs_kl_and_the_result_says_how_much()
    {
        var r = EngineCellRunner.Run(Cell("top-k-reduce:k=1"), Model(), null, null, CancellationToken.None);
        Assert.True(r.MeanKlDivergence > 1e-6, $"mean KL {r.MeanKlDivergence}");
        Assert.True(r.MaxKlDivergence >= r.MeanKlDivergence);
        Assert.InRange(r.Top1Agreement!.Value, 0, 1);
        Assert.NotEqual(r.ExactPerplexity, r.Perplexity);
        Assert.Equal(0, r.IdenticalLogitPositions);
    }

    [Fact]
    public void Without_measure_quality_no_quality_figures_are_reported()
    {
        var r = EngineCellRunner.Run(Cell(quality: false), Model(), null, null, CancellationToken.None);
        Assert.Null(r.MeanKlDivergence);
        Assert.Null(r.Perplexity);
    }

    [Fact]
    public void A_low_bit_precision_policy_reads_the_requanted_copy_and_costs_kl()
    {
        string model = Model();
        ExpertRequantizer.Write(model, GgmlType.Q4_0);
        var uniform = EngineCellRunner.Run(Cell(precision: "uniform-bits:bits=4"), model, null, null, CancellationToken.None);
        Assert.True(uniform.MeanKlDivergence > 0, $"mean KL {uniform.MeanKlDivergence}");
        Assert.Equal(0, uniform.IdenticalLogitPositions);
        Assert.True(uniform.BytesRead > 0);

        var native = EngineCellRunner.Run(Cell(precision: "native"), model, null, null, CancellationToken.None);
        Assert.Equal(0, native.MeanKlDivergence);
        Assert.True(uniform.BytesRead < native.BytesRead, $"4-bit copies should read fewer bytes than Q8_0: {uniform.BytesRead} vs {native.BytesRead}");
    }

    [Fact]
    public void A_precision_policy_without_side_files_is_refused_with_the_command_that_writes_them()
    {
        var e = Assert.Throws<FileNotFoundException>(() => EngineCellRunner.Run(Cell(precision: "uniform-bits:bits=4", quality: false), Model(), null, null, CancellationToken.None));
        Assert.Contains("moelab model requant", e.Message);
    }
}
