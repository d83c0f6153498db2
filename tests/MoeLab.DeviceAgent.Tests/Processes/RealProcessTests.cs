using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using MoeLab.DeviceAgent.Api;
using MoeLab.Engine.Gguf;
using MoeLab.Harness.Coordinator;

namespace MoeLab.DeviceAgent.Tests.Processes;

/// <summary>
/// Three real processes on loopback: <c>moelab serve</c>, the standalone device agent <c>moelab-agent</c> (the
/// program published with NativeAOT) with its own models directory, and
/// <c>moelab run</c> of an experiment whose target is agents, which finds the running coordinator and submits its
/// cells there. The results equal a local run of the same cells; then the running processes are attacked with the
/// refusal table and neither crashes.
/// </summary>
public sealed class RealProcessTests
{
    [Fact]
    public void A_run_submitted_to_a_running_serve_and_run_by_an_agent_process_equals_a_local_run()
    {
        using var rig = new ProcessRig("e2e");
        string model = rig.Model("tiny.gguf", "tiny-qwen3moe", GgmlType.Q8_0);
        var (serve, address) = rig.Serve(leaseSeconds: 10, heartbeatSeconds: 1);
        var agent = rig.StandaloneAgent(address, "device-1");
        string experiment = rig.Experiment("e2e", address, model, """
            prompts: ["The expert cache", "Once upon a time"]
            generate: 16
            warmup: 0
            repetitions: 2
            threads: 1
            matrix:
              cache: [lru]
              budget: [192KiB, 256KiB, 512KiB]
              io_mode: [buffered]
            """);

        var run = rig.Start("moelab run", "run", experiment, "--results", rig.Results, "--no-report");
        Assert.True(run.WaitForExit(TimeSpan.FromMinutes(3)) == 0, rig.Outputs());
        Assert.Contains("using the coordinator already running at " + address, run.Output);

        var store = rig.Store("e2e")!;
        var records = store.LoadCells();
        Assert.Equal(3, records.Count);
        Assert.Empty(store.LoadFailures());
        Assert.True(records.Sum(r => r.Result.ExpertMisses) > 0 && records.Sum(r => r.Result.ExpertHits) > 0,
            "the budgets must make the cells stream and hit: " + string.Join(", ", records.Select(r => $"{r.Cell.BudgetBytes}: {r.Result.ExpertHits} hits {r.Result.ExpertMisses} misses")));
        Assert.All(records, r => Assert.Equal(2 * 2 * 16, r.Result.TokenEvents.Length));
        // The agent's own telemetry came back with the cells.
        Assert.All(records, r => Assert.Contains("rss_bytes", r.Telemetry.MetricNames));
        rig.AssertEqualsLocalRun(records);

        // The coordinator outlives the run and still holds the finished cells (a second run would reuse them).
        using var queue = new CoordinatorQueueClient(address, rig.Token);
        Assert.All(queue.List().Cells, c => Assert.Equal(CellState.Succeeded, c.State));
        Assert.False(serve.HasExited);
        Assert.False(agent.HasExited);
    }

    [Fact]
    public async Task The_running_processes_refuse_bad_requests_with_the_right_status_and_survive()
    {
        using var rig = new ProcessRig("refuse");
        string model = rig.Model("tiny.gguf", "tiny-qwen3moe", GgmlType.Q8_0);
        File.Copy(Path.Combine(rig.Models, model), Path.Combine(rig.Work, "outside.gguf"));
        var (serve, address) = rig.Serve(leaseSeconds: 10, heartbeatSeconds: 1);
        var agent = rig.Agent(address, "device-1");
        agent.WaitForLine(l => l.Contains("registered with", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        using var http = new HttpClient { BaseAddress = address };

        string register = JsonSerializer.Serialize(new RegisterRequest(rig.Token, AgentApi.Version, AttackerDevice()), AgentApiJson.Default.RegisterRequest);
        var reg = JsonSerializer.Deserialize(await (await Post(http, AgentApi.Register, null, register)).Content.ReadAsStringAsync(), AgentApiJson.Default.RegisterResponse)!;
        var table = new (string What, Func<Task<HttpResponseMessage>> Send, HttpStatusCode Expected)[]
        {
            ("no token", () => http.GetAsync(AgentApi.Work + "?wait=0"), HttpStatusCode.Unauthorized),
            ("wrong session token", () => Get(http, AgentApi.Work + "?wait=0", "not-a-session"), HttpStatusCode.Unauthorized),
            ("enrolment token used as a session", () => Get(http, AgentApi.Work + "?wait=0", rig.Token), HttpStatusCode.Unauthorized),
            ("wrong enrolment token", () => Post(http, AgentApi.Register, null, register.Replace(rig.Token, "0000", StringComparison.Ordinal)), HttpStatusCode.Unauthorized),
            ("queue without the enrolment token", () => http.GetAsync(QueueApi.Cells), HttpStatusCode.Unauthorized),
            ("queue with a session token", () => Get(http, QueueApi.Cells, reg.SessionToken), HttpStatusCode.Unauthorized),
            ("malformed JSON on register", () => Post(http, AgentApi.Register, null, "{\"enrolment_token\":"), HttpStatusCode.BadRequest),
            ("malformed JSON events", () => Post(http, AgentApi.Events("c1"), reg.SessionToken, "{\"attempt\": \"x\"}"), HttpStatusCode.BadRequest),
            ("malformed JSON submission", () => Post(http, QueueApi.Cells, rig.Token, "{\"cells\": [{\"cell_id\": 3"), HttpStatusCode.BadRequest),
            ("submission without a cell object", () => Post(http, QueueApi.Cells, rig.Token, "{\"cells\": [{\"cell_id\": \"x\", \"cell\": 3}]}"), HttpStatusCode.BadRequest),
            ("events for a cell never leased", () => Post(http, AgentApi.Events("nope"), reg.SessionToken, "{\"attempt\":1,\"sequence\":0,\"tokens\":[],\"telemetry\":[]}"), HttpStatusCode.NotFound),
        };
        foreach (var (what, send, expected) in table)
        {
            using var response = await send();
            Assert.True(expected == response.StatusCode, $"{what}: expected {expected}, got {response.StatusCode}");
        }

        // An oversized body: 413 from the header, or the socket closed on us mid-send; refused either way.
        string big = "{\"cells\":[],\"pad\":\"" + new string('x', AgentApi.MaxBodyBytes + 10) + "\"}";
        try
        {
            using var response = await Post(http, QueueApi.Cells, rig.Token, big);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        }
        catch (HttpRequestException)
        {
        }

        // Cells whose model escapes the agent's directory are refused by the agent with the reason; it keeps going.
        using var queue = new CoordinatorQueueClient(address, rig.Token);
        var escaping = new[] { ("dotdot", "../outside.gguf", "resolves outside the models directory"), ("absolute", Path.Combine(rig.Work, "outside.gguf"), "absolute paths are refused") };
        var good = new RunCell { CellId = "good", Experiment = "refuse", Model = model, Prompts = ["The expert cache"], GenerateTokens = 4, Threads = 1, IoMode = "buffered" };
        queue.Submit([.. escaping.Select(e => new SubmittedCell(e.Item1, ProcessRig.CellJson(good with { CellId = e.Item1, Model = e.Item2 }))), new SubmittedCell("good", ProcessRig.CellJson(good))]);
        foreach (var (id, _, reason) in escaping)
        {
            var s = ProcessRig.WaitFor(queue, id, c => c.IsFinished, TimeSpan.FromSeconds(60), rig.Outputs);
            Assert.Equal(CellState.Failed, s.State);
            Assert.Contains(reason, s.Error);
        }

        Assert.Equal(CellState.Succeeded, ProcessRig.WaitFor(queue, "good", c => c.IsFinished, TimeSpan.FromSeconds(60), rig.Outputs).State);
        Assert.False(serve.HasExited, rig.Outputs());
        Assert.False(agent.HasExited, rig.Outputs());
    }

    internal static DeviceDescription AttackerDevice() =>
        new("attacker", "linux", "x64", "cpu", 2, 1 << 30, 1 << 29, "/models", [], null, null, new Dictionary<string, string>());

    private static Task<HttpResponseMessage> Get(HttpClient http, string path, string token)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http.SendAsync(request);
    }

    private static Task<HttpResponseMessage> Post(HttpClient http, string path, string? token, string body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return http.SendAsync(request);
    }
}
