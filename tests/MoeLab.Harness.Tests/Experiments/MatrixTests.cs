using MoeLab.Harness.Experiments;

namespace MoeLab.Harness.Tests.Experiments;

public sealed class MatrixTests
{
    private const string Sweep = ExperimentYaml.Minimal + """

        matrix:
          budget: [1MiB, 2MiB, 50%]
          prefetch: [none]
          io_mode: [direct, buffered]
        exclude:
          - { budget: 2MiB, io_mode: buffered }
        baseline: { budget: 1MiB, io_mode: direct }
        """;

    [Fact]
    public void ExpansionIsTheCartesianProductMinusExclusions()
    {
        var cells = Matrix.Expand(ExperimentYaml.Parse(Sweep), totalExpertBytes: 10 << 20);
        Assert.Equal(3 * 2 - 1, cells.Count);
        Assert.Equal(
            ["budget=1MiB io_mode=direct", "budget=1MiB io_mode=buffered", "budget=2MiB io_mode=direct", "budget=50% io_mode=direct", "budget=50% io_mode=buffered"],
            cells.Select(c => c.Name));
        Assert.Equal(5L << 20, cells[3].Cell.BudgetBytes);
        Assert.Equal("buffered", cells[1].Cell.IoMode);
        Assert.Single(cells, c => c.IsBaseline);
        Assert.True(cells[0].IsBaseline);
        Assert.Equal(cells.Count, cells.Select(c => c.Id).Distinct().Count());
        Assert.All(cells, c => Assert.Equal(c.Id, c.Cell.CellId));
    }

    [Fact]
    public void IdsAreStableAcrossRunsAndUnchangedByAddingValues()
    {
        var first = Matrix.Expand(ExperimentYaml.Parse(Sweep), 10 << 20);
        var again = Matrix.Expand(ExperimentYaml.Parse(Sweep), 10 << 20);
        Assert.Equal(first.Select(c => c.Id), again.Select(c => c.Id));

        // Adding a budget keeps every existing cell's id (what --resume relies on).
        var wider = Matrix.Expand(ExperimentYaml.Parse(Sweep.Replace("[1MiB, 2MiB, 50%]", "[1MiB, 2MiB, 50%, 4MiB]")), 10 << 20);
        Assert.Subset(wider.Select(c => c.Id).ToHashSet(), first.Select(c => c.Id).ToHashSet());
        Assert.Equal(first.Count + 2, wider.Count);
    }

    [Fact]
    public void AConfigurationChangeChangesTheHash()
    {
        var a = Matrix.Expand(ExperimentYaml.Parse(Sweep), 10 << 20);
        var b = Matrix.Expand(ExperimentYaml.Parse(Sweep + "\ngenerate: 64\n"), 10 << 20);
        Assert.Empty(a.Select(c => c.ConfigHash).Intersect(b.Select(c => c.ConfigHash)));
    }

    [Fact]
    public void AFractionalBudgetNeedsTheModelSize()
    {
        var e = ExperimentYaml.Parse(Sweep);
        Assert.Throws<InvalidOperationException>(() => Matrix.Expand(e, null));
    }

    [Fact]
    public void AnUnsweptExperimentIsOneDefaultCell()
    {
        var cells = Matrix.Expand(ExperimentYaml.Parse(ExperimentYaml.Minimal), null);
        var c = Assert.Single(cells);
        Assert.Equal("default", c.Name);
        Assert.Null(c.Cell.BudgetBytes);
        Assert.Equal(("lru", "none", "native", "unchanged", "fifo", "direct"), (c.Cell.Cache, c.Cell.Prefetch, c.Cell.Precision, c.Cell.Routing, c.Cell.Io, c.Cell.IoMode));
    }
}
