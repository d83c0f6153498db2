using System.Net;
using System.Net.Sockets;
using MoeLab.Harness.Coordinator;
using MoeLab.Harness.Experiments;
using MoeLab.Harness.Runs;

namespace MoeLab.DeviceAgent.Tests.Api;

/// <summary>The agents target picks a coordinator: the one already listening at its address, or its own.</summary>
public sealed class AgentsTargetCoordinatorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-target-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private string TokenFile(string name, string token)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, token);
        return path;
    }

    private static AgentsOptions Options(Uri address, string tokenFile) =>
        new($"127.0.0.1:{address.Port}", tokenFile, TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(1));

    [Fact]
    public async Task A_running_coordinator_that_accepts_the_token_is_used()
    {
        await using var server = await CoordinatorProtocolTests.StartAsync(new CellQueue(TimeSpan.FromSeconds(30)));
        using var target = new AgentsTarget(Options(server.Address, TokenFile("ok", CoordinatorProtocolTests.Enrolment)), TextWriter.Null);
        Assert.True(target.UsesRunningCoordinator);
        target.Prepare([new() { CellId = "c1", Experiment = "x", Model = "m.gguf", Prompts = ["p"] }]);
        Assert.Equal(CellState.Pending, server.Queue.Find("c1")!.State);
    }

    [Fact]
    public async Task A_running_coordinator_that_refuses_the_token_is_a_clear_error_not_a_second_coordinator()
    {
        await using var server = await CoordinatorProtocolTests.StartAsync(new CellQueue(TimeSpan.FromSeconds(30)));
        var e = Assert.Throws<InvalidOperationException>(() => new AgentsTarget(Options(server.Address, TokenFile("wrong", new string('f', 64))), TextWriter.Null));
        Assert.Contains("refuses the enrolment token", e.Message);
    }

    [Fact]
    public void Without_a_running_coordinator_the_target_starts_its_own()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        using var target = new AgentsTarget(Options(new Uri($"http://127.0.0.1:{port}/"), TokenFile("own", CoordinatorProtocolTests.Enrolment)), TextWriter.Null);
        Assert.False(target.UsesRunningCoordinator);
        Assert.Equal(port, target.Address.Port);
    }
}
