using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Harness.Coordinator;
using MoeLab.Harness.Results;

namespace MoeLab.DeviceAgent.Tests.Processes;

/// <summary>
/// A scratch directory with a synthesized model directory and helpers to start real <c>moelab serve</c>,
/// <c>moelab agent</c> and <c>moelab run</c> processes on loopback. Disposing kills every process it started and
/// deletes the directory.
/// </summary>
internal sealed partial class ProcessRig : IDisposable
{
    private readonly List<MoelabProcess> _processes = [];

    public ProcessRig(string name)
    {
        Work = Directory.CreateTempSubdirectory($"moelab-{name}-").FullName;
        Models = Path.Combine(Work, "models");
        Directory.CreateDirectory(Models);
        TokenFile = Path.Combine(Work, "coordinator", "enrolment-token");
        Results = Path.Combine(Work, "results");
    }

    public string Work { get; }

    public string Models { get; }

    public string TokenFile { get; }

    public string Results { get; }

    public string Token => File.ReadAllText(TokenFile).Trim();

    public string Model(string file, string preset, GgmlType quant)
    {
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find(preset)!, null, quant, Seed: 3), Path.Combine(Models, file));
        return file;
    }

    public MoelabProcess Start(string label, params string[] args)
    {
        var p = MoelabProcess.Start(label, Work, args);
        _processes.Add(p);
        return p;
    }

    /// <summary>Starts <c>moelab serve</c> on an ephemeral loopback port and returns it with the address it printed.</summary>
    public (MoelabProcess Serve, Uri Address) Serve(double leaseSeconds, double heartbeatSeconds, int maxAttempts = 3)
    {
        var serve = Start("moelab serve", "serve", "--listen", "127.0.0.1:0", "--token-file", TokenFile,
            "--lease-timeout", leaseSeconds.ToString(CultureInfo.InvariantCulture), "--heartbeat", heartbeatSeconds.ToString(CultureInfo.InvariantCulture),
            "--max-attempts", maxAttempts.ToString(CultureInfo.InvariantCulture));
        string line = serve.WaitForLine(l => l.StartsWith("coordinator listening on ", StringComparison.Ordinal), TimeSpan.FromSeconds(60));
        return (serve, new Uri(ListeningOn().Match(line).Groups[1].Value));
    }

    public MoelabProcess Agent(Uri coordinator, string name, params string[] extra) =>
        Start("moelab agent " + name, ["agent", .. AgentArgs(coordinator, name), .. extra]);

    /// <summary>The standalone agent program (<c>moelab-agent</c>, the one published with NativeAOT for devices).</summary>
    public MoelabProcess StandaloneAgent(Uri coordinator, string name)
    {
        var p = MoelabProcess.StartStandaloneAgent("moelab-agent " + name, Work, AgentArgs(coordinator, name));
        _processes.Add(p);
        return p;
    }

    private string[] AgentArgs(Uri coordinator, string name) =>
        ["--coordinator", coordinator.ToString(), "--token-file", TokenFile, "--models", Models, "--name", name, "--telemetry-hz", "20"];

    /// <summary>An experiment on target agents that submits to the coordinator at <paramref name="coordinator"/>.</summary>
    public string Experiment(string name, Uri coordinator, string model, string body)
    {
        string path = Path.Combine(Work, name + ".yaml");
        File.WriteAllText(path, $"""
            name: {name}
            model: {model}
            target: agents
            agents: {"{"} listen: "127.0.0.1:{coordinator.Port}", token_file: {TokenFile}, lease_timeout_seconds: 5, timeout_minutes: 5 {"}"}
            {body}
            """);
        return path;
    }

    public ResultStore? Store(string experiment) => ResultStore.Latest(Results, experiment);

    /// <summary>Each recorded cell run again here with the engine, compared token by token and count by count.</summary>
    public void AssertEqualsLocalRun(IReadOnlyList<CellRecord> records)
    {
        Assert.NotEmpty(records);
        foreach (var record in records)
        {
            var local = EngineCellRunner.Run(record.Cell, Path.Combine(Models, record.Cell.Model), null, null, CancellationToken.None);
            var remote = record.Result;
            Assert.Equal("engine", remote.Source);
            Assert.Equal(local.Tokens, remote.Tokens);
            Assert.Equal(local.Texts, remote.Texts);
            Assert.Equal(local.TokenEvents.Select(t => t.TokenId), remote.TokenEvents.Select(t => t.TokenId));
            Assert.Equal(local.TokenEvents.Select(t => (t.Hits, t.Misses, t.PrefetchHits, t.BytesRead)), remote.TokenEvents.Select(t => (t.Hits, t.Misses, t.PrefetchHits, t.BytesRead)));
            Assert.Equal((local.ExpertHits, local.ExpertMisses, local.BytesRead), (remote.ExpertHits, remote.ExpertMisses, remote.BytesRead));
        }
    }

    public static JsonElement CellJson(RunCell cell) => JsonSerializer.SerializeToElement(cell, RunCellJson.Default.RunCell);

    /// <summary>Polls the coordinator's queue until <paramref name="done"/> holds for the cell.</summary>
    public static CellStatus WaitFor(CoordinatorQueueClient queue, string cellId, Func<CellStatus, bool> done, TimeSpan timeout, Func<string>? context = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var s = queue.Status(cellId);
            if (done(s)) return s;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"cell {cellId} still {s.State} (attempt {s.Attempt}, {s.TokensReceived} tokens) after {timeout.TotalSeconds} s\n{context?.Invoke()}");
            Thread.Sleep(50);
        }
    }

    public string Outputs() => string.Join("\n", _processes.Select(p => $"--- {p.Label} ---\n{p.Output}"));

    public void Dispose()
    {
        foreach (var p in _processes) p.Dispose();
        try
        {
            Directory.Delete(Work, true);
        }
        catch (IOException)
        {
        }
    }

    [GeneratedRegex(@"coordinator listening on (\S+)")]
    private static partial Regex ListeningOn();
}
