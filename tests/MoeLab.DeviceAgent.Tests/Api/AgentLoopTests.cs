using System.Net;
using System.Text.Json;
using MoeLab.DeviceAgent;
using MoeLab.DeviceAgent.Api;
using MoeLab.Harness.Coordinator;

namespace MoeLab.DeviceAgent.Tests.Api;

/// <summary>
/// The agent loop against a real coordinator on loopback. The cell runner here is a protocol test double that emits
/// tokens derived from the cell (no engine): what is checked is delivery — every token arrives once, in order.
/// The engine-backed runner is exercised by the end-to-end tests.
/// </summary>
public sealed class AgentLoopTests : IDisposable
{
    private const string Enrolment = CoordinatorProtocolTests.Enrolment;
    private readonly string _models = Directory.CreateTempSubdirectory("moelab-agent-models-").FullName;

    public void Dispose() => Directory.Delete(_models, true);

    private sealed class CountingRunner(int tokens) : ICellRunner
    {
        public string? Preflight(JsonElement cell, ModelDirectory models, long availableMemoryBytes) =>
            cell.TryGetProperty("budget_bytes", out var b) && b.GetInt64() > availableMemoryBytes ? "budget exceeds available memory" : null;

        public JsonElement Run(JsonElement cell, ModelDirectory models, Action<TokenEvent> onToken, CancellationToken cancel)
        {
            int seed = cell.GetProperty("seed").GetInt32();
            for (int i = 0; i < tokens; i++) onToken(new TokenEvent(0, i, seed * 1000 + i, 1, 0, 0, 0, 0, 0, 0, 0));
            return JsonDocument.Parse($"{{\"tokens\":{tokens}}}").RootElement;
        }
    }

    [Fact]
    public async Task TwoAgentsShareTheCellsAndEveryTokenArrivesOnce()
    {
        var queue = new CellQueue(TimeSpan.FromSeconds(30));
        for (int i = 0; i < 6; i++) queue.Enqueue($"cell-{i}", JsonDocument.Parse($"{{\"seed\":{i}}}").RootElement);
        await using var server = await CoordinatorProtocolTests.StartAsync(queue);

        var agents = Enumerable.Range(0, 2).Select(n => Task.Run(() =>
        {
            var options = new AgentOptions(server.Address, Enrolment, new ModelDirectory(_models), $"a{n}", TimeSpan.FromMilliseconds(50),
                TimeSpan.FromMilliseconds(200), null, IdleExit: TimeSpan.FromMilliseconds(300));
            return new Agent(options, new CountingRunner(700), TextWriter.Null).Run(CancellationToken.None);
        })).ToArray();
        Assert.True(queue.WaitAll(TimeSpan.FromSeconds(60)));
        await Task.WhenAll(agents);

        foreach (var cell in queue.Snapshot())
        {
            Assert.Equal(CellState.Succeeded, cell.State);
            int seed = cell.Cell.GetProperty("seed").GetInt32();
            Assert.Equal(Enumerable.Range(0, 700).Select(i => seed * 1000 + i), cell.Tokens.Select(t => t.TokenId));
            Assert.NotEmpty(cell.Telemetry);
            Assert.Contains("rss_bytes", cell.MetricNames);
        }
    }

    [Fact]
    public async Task ACellThatCannotFitIsRefusedBeforeItStarts()
    {
        var queue = new CellQueue(TimeSpan.FromSeconds(30));
        queue.Enqueue("huge", JsonDocument.Parse("{\"seed\":1,\"budget_bytes\":" + (1L << 60) + "}").RootElement);
        await using var server = await CoordinatorProtocolTests.StartAsync(queue);
        var options = new AgentOptions(server.Address, Enrolment, new ModelDirectory(_models), "a", TimeSpan.FromMilliseconds(50),
            TimeSpan.FromMilliseconds(200), null, MaxCells: 1);
        new Agent(options, new CountingRunner(10), TextWriter.Null).Run(CancellationToken.None);

        var cell = queue.Find("huge")!;
        Assert.Equal(CellState.Failed, cell.State);
        Assert.StartsWith("refused before start", cell.Error);
        Assert.Empty(cell.Tokens);
    }

    [Fact]
    public async Task AWrongEnrolmentTokenStopsTheAgentWithAClearError()
    {
        var queue = new CellQueue(TimeSpan.FromSeconds(30));
        await using var server = await CoordinatorProtocolTests.StartAsync(queue);
        var options = new AgentOptions(server.Address, "wrong", new ModelDirectory(_models), "a", TimeSpan.FromSeconds(1),
            TimeSpan.FromMilliseconds(200), null, MaxCells: 1);
        var e = Assert.Throws<CoordinatorAuthException>(() => new Agent(options, new CountingRunner(1), TextWriter.Null).Run(CancellationToken.None));
        Assert.Contains("401", e.Message);
    }

    [Fact]
    public async Task TheAgentRetriesUntilTheCoordinatorComesUp()
    {
        // Reserve a port, start the agent against it, then bring the coordinator up there.
        var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();

        var queue = new CellQueue(TimeSpan.FromSeconds(30));
        queue.Enqueue("c", JsonDocument.Parse("{\"seed\":3}").RootElement);
        var options = new AgentOptions(new Uri($"http://127.0.0.1:{port}/"), Enrolment, new ModelDirectory(_models), "a", TimeSpan.FromMilliseconds(50),
            TimeSpan.FromMilliseconds(200), null, MaxCells: 1);
        var agent = Task.Run(() => new Agent(options, new CountingRunner(5), TextWriter.Null).Run(CancellationToken.None));
        await Task.Delay(500);
        await using var server = new CoordinatorServer(new CoordinatorOptions(new IPEndPoint(IPAddress.Loopback, port), Enrolment, TimeSpan.FromSeconds(30),
            TimeSpan.FromMilliseconds(200), TimeSpan.FromHours(1)), queue);
        await server.StartAsync();
        await agent.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(CellState.Succeeded, queue.Find("c")!.State);
        Assert.Equal(5, queue.Find("c")!.Tokens.Count);
    }
}
