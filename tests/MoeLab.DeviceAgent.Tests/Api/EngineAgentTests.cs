using System.Text.Json;
using MoeLab.DeviceAgent;
using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Harness.Coordinator;

namespace MoeLab.DeviceAgent.Tests.Api;

/// <summary>
/// A real coordinator and a real agent loop running the engine-backed runner on loopback: the cell's result through
/// the agent equals a local run of the same cell (same tokens, same hit and miss counts).
/// </summary>
public sealed class EngineAgentTests : IDisposable
{
    private readonly string _models = Directory.CreateTempSubdirectory("moelab-agent-engine-").FullName;

    public void Dispose() => Directory.Delete(_models, true);

    private RunCell Cell(string model, long budget) => new()
    {
        CellId = "tiny-streamed",
        Experiment = "agent-e2e",
        Model = model,
        Prompts = ["The expert cache"],
        GenerateTokens = 12,
        Repetitions = 2,
        BudgetBytes = budget,
        IoMode = "buffered",
        Threads = 1,
    };

    [Fact]
    public async Task A_cell_run_through_an_agent_equals_the_same_cell_run_locally()
    {
        string file = "tiny.gguf";
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.Q8_0, Seed: 3), Path.Combine(_models, file));
        var cell = Cell(file, 256 << 10);
        var local = EngineCellRunner.Run(cell, Path.Combine(_models, file), null, null, CancellationToken.None);

        var queue = new CellQueue(TimeSpan.FromSeconds(60));
        queue.Enqueue(cell.CellId, JsonSerializer.SerializeToElement(cell, RunCellJson.Default.RunCell));
        await using var server = await CoordinatorProtocolTests.StartAsync(queue);
        var options = new AgentOptions(server.Address, CoordinatorProtocolTests.Enrolment, new ModelDirectory(_models), "engine-agent",
            TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(200), null, MaxCells: 1);
        await Task.Run(() => new Agent(options, new EngineCellRunner(), TextWriter.Null).Run(CancellationToken.None));

        var done = queue.Find(cell.CellId)!;
        Assert.Equal(CellState.Succeeded, done.State);
        Assert.Equal(local.TokenEvents.Select(t => t.TokenId), done.Tokens.Select(t => t.TokenId));
        Assert.Equal(local.TokenEvents.Select(t => (t.Hits, t.Misses, t.BytesRead)), done.Tokens.Select(t => (t.Hits, t.Misses, t.BytesRead)));
        Assert.True(local.ExpertMisses > 0, "the budget must make the run stream");
        Assert.Equal(24, done.Tokens.Count);
    }

    [Fact]
    public void A_cell_whose_budget_cannot_fit_is_refused_with_the_reason_before_it_starts()
    {
        string file = Path.Combine(_models, "tiny.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.Q8_0, Seed: 3), file);
        var fits = EngineCellRunner.Preflight(Cell("tiny.gguf", 256 << 10), file, 4L << 30);
        var tooBig = EngineCellRunner.Preflight(Cell("tiny.gguf", 8L << 30), file, 4L << 30);
        Assert.Null(fits);
        Assert.NotNull(tooBig);
        Assert.Contains("only 4096 MiB is available", tooBig);
    }
}
