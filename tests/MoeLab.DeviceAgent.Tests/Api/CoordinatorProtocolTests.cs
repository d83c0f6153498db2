using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using MoeLab.DeviceAgent;
using MoeLab.DeviceAgent.Api;
using MoeLab.Harness.Coordinator;

namespace MoeLab.DeviceAgent.Tests.Api;

/// <summary>The coordinator on a real loopback socket, spoken to over HTTP as an agent (or an attacker) would.</summary>
public sealed class CoordinatorProtocolTests : IAsyncLifetime
{
    internal const string Enrolment = "0123456789abcdef0123456789abcdef-test-enrolment";
    private CoordinatorServer _server = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _server = await StartAsync(new CellQueue(TimeSpan.FromSeconds(30)));
        _http = new HttpClient { BaseAddress = _server.Address };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _server.DisposeAsync();
    }

    internal static async Task<CoordinatorServer> StartAsync(CellQueue queue, TimeSpan? sessionLifetime = null, double rate = 1000)
    {
        var server = new CoordinatorServer(
            new CoordinatorOptions(new IPEndPoint(IPAddress.Loopback, 0), Enrolment, queue.LeaseTimeout, TimeSpan.FromMilliseconds(200),
                sessionLifetime ?? TimeSpan.FromHours(1), RequestsPerSecond: rate),
            queue);
        await server.StartAsync();
        return server;
    }

    internal static DeviceDescription Device() =>
        new("test", "linux", "x64", "cpu", 2, 1 << 30, 1 << 29, "/models", [], null, null, new Dictionary<string, string>());

    private async Task<string> RegisterAsync()
    {
        var body = JsonSerializer.Serialize(new RegisterRequest(Enrolment, AgentApi.Version, Device()), AgentApiJson.Default.RegisterRequest);
        var response = await _http.PostAsync(AgentApi.Register, new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var reg = JsonSerializer.Deserialize(await response.Content.ReadAsStringAsync(), AgentApiJson.Default.RegisterResponse)!;
        return reg.SessionToken;
    }

    private async Task<HttpStatusCode> SendAsync(HttpMethod method, string path, string? token, string? body, string contentType = "application/json")
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, contentType);
        using var response = await _http.SendAsync(request);
        return response.StatusCode;
    }

    public static TheoryData<string, string, string?, string?, HttpStatusCode> Refusals() => new()
    {
        { "no token", "GET " + AgentApi.Work + "?wait=0", null, null, HttpStatusCode.Unauthorized },
        { "wrong session token", "GET " + AgentApi.Work + "?wait=0", "not-a-token", null, HttpStatusCode.Unauthorized },
        { "wrong enrolment token", "POST " + AgentApi.Register, null, "{\"enrolment_token\":\"nope\",\"protocol_version\":\"v1\",\"device\":null}", HttpStatusCode.Unauthorized },
        { "malformed JSON on register", "POST " + AgentApi.Register, null, "{\"enrolment_token\":", HttpStatusCode.BadRequest },
        { "wrong JSON type", "POST " + AgentApi.Register, null, "[1,2,3]", HttpStatusCode.BadRequest },
        { "null body", "POST " + AgentApi.Heartbeat, "SESSION", "null", HttpStatusCode.BadRequest },
        { "malformed events", "POST " + AgentApi.Events("c1"), "SESSION", "{\"attempt\": \"x\"}", HttpStatusCode.BadRequest },
        { "events for a cell never leased", "POST " + AgentApi.Events("c1"), "SESSION", "{\"attempt\":1,\"sequence\":0,\"tokens\":[],\"telemetry\":[]}", HttpStatusCode.Conflict },
        { "completion of unknown cell", "POST " + AgentApi.Complete("nope"), "SESSION", "{\"attempt\":1,\"succeeded\":true,\"event_batches\":0}", HttpStatusCode.NotFound },
        { "unsupported protocol", "POST " + AgentApi.Register, null, "{\"enrolment_token\":\"" + Enrolment + "\",\"protocol_version\":\"v0\",\"device\":null}", HttpStatusCode.BadRequest },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task BadRequestsAreRefusedWithTheRightStatus(string what, string request, string? token, string? body, HttpStatusCode expected)
    {
        _server.Queue.Enqueue("c1", JsonDocument.Parse("{}").RootElement);
        string session = await RegisterAsync();
        string[] parts = request.Split(' ', 2);
        var status = await SendAsync(new HttpMethod(parts[0]), parts[1], token == "SESSION" ? session : token, body);
        Assert.True(expected == status, $"{what}: expected {expected}, got {status}");

        // The coordinator is still alive and serving afterwards.
        var after = await SendAsync(HttpMethod.Get, AgentApi.Work + "?wait=0", await RegisterAsync(), null);
        Assert.Contains(after, new[] { HttpStatusCode.OK, HttpStatusCode.NoContent });
    }

    [Fact]
    public async Task OversizedBodiesAreRefused()
    {
        string session = await RegisterAsync();
        var big = "{\"attempt\":1,\"sequence\":0,\"tokens\":[],\"telemetry\":[],\"pad\":\"" + new string('x', AgentApi.MaxBodyBytes + 10) + "\"}";
        try
        {
            var status = await SendAsync(HttpMethod.Post, AgentApi.Events("c1"), session, big);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        }
        catch (HttpRequestException)
        {
            // Kestrel answers 413 from the Content-Length header and may close the socket before the client has
            // finished sending: the refusal then shows as a broken pipe on our side. Either way it was refused.
        }

        // The coordinator survived it.
        Assert.Equal(HttpStatusCode.NoContent, await SendAsync(HttpMethod.Get, AgentApi.Work + "?wait=0", await RegisterAsync(), null));
    }

    [Fact]
    public async Task WrongContentTypeIsABadRequest()
    {
        string session = await RegisterAsync();
        Assert.Equal(HttpStatusCode.BadRequest, await SendAsync(HttpMethod.Post, AgentApi.Heartbeat, session, "{}", "text/plain"));
    }

    [Fact]
    public async Task ExpiredSessionTokensAreRefused()
    {
        await using var server = await StartAsync(new CellQueue(TimeSpan.FromSeconds(30)), sessionLifetime: TimeSpan.FromMilliseconds(1));
        using var http = new HttpClient { BaseAddress = server.Address };
        var body = JsonSerializer.Serialize(new RegisterRequest(Enrolment, AgentApi.Version, Device()), AgentApiJson.Default.RegisterRequest);
        var reg = JsonSerializer.Deserialize(await (await http.PostAsync(AgentApi.Register, new StringContent(body, Encoding.UTF8, "application/json"))).Content.ReadAsStringAsync(), AgentApiJson.Default.RegisterResponse)!;
        await Task.Delay(20);
        using var request = new HttpRequestMessage(HttpMethod.Get, AgentApi.Work + "?wait=0");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", reg.SessionToken);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task RequestRatesAreBounded()
    {
        await using var server = await StartAsync(new CellQueue(TimeSpan.FromSeconds(30)), rate: 5);
        using var http = new HttpClient { BaseAddress = server.Address };
        var statuses = new List<HttpStatusCode>();
        for (int i = 0; i < 40; i++) statuses.Add((await http.GetAsync(AgentApi.Work + "?wait=0")).StatusCode);
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
    }

    [Fact]
    public void RefusesToListenBeyondLoopbackUnlessAllowed()
    {
        var options = new CoordinatorOptions(new IPEndPoint(IPAddress.Any, 0), Enrolment, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), TimeSpan.FromHours(1));
        Assert.Throws<ArgumentException>(() => new CoordinatorServer(options, new CellQueue(TimeSpan.FromSeconds(1))));
    }

    [Fact]
    public async Task AResentBatchIsAppliedOnce()
    {
        _server.Queue.Enqueue("c1", JsonDocument.Parse("{\"x\":1}").RootElement);
        using var client = new CoordinatorClient(_server.Address);
        client.Register(new RegisterRequest(Enrolment, AgentApi.Version, Device()), CancellationToken.None);
        var lease = client.Poll(TimeSpan.FromSeconds(1), CancellationToken.None)!;
        var token = new TokenEvent(0, 0, 42, 1.5, 1, 2, 0, 100, 0.5, 0.7, 0.1);
        var batch = new EventBatch(lease.Attempt, 0, [token], ["rss_bytes"], [new TelemetryRow(0.1, [123.0])]);

        Assert.Equal(0, client.SendEvents("c1", batch, CancellationToken.None).AppliedThrough);
        Assert.Equal(0, client.SendEvents("c1", batch, CancellationToken.None).AppliedThrough);
        client.Complete("c1", new CompletionRequest(lease.Attempt, true, null, 1, null), CancellationToken.None);
        client.Complete("c1", new CompletionRequest(lease.Attempt, true, null, 1, null), CancellationToken.None); // resent completion: harmless

        var cell = _server.Queue.Find("c1")!;
        Assert.Equal(CellState.Succeeded, cell.State);
        Assert.Single(cell.Tokens);
        Assert.Equal(42, cell.Tokens[0].TokenId);
        Assert.Single(cell.Telemetry);
    }
}
