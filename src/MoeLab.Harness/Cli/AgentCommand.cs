using MoeLab.DeviceAgent;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab agent</c>: the device agent (the same code as the standalone NativeAOT binary).</summary>
public sealed class AgentCommand : ICliCommand
{
    public string Name => "agent";

    public string Summary => "run a device agent that dials the coordinator and executes run cells";

    public string Usage => AgentMain.Usage;

    public int Run(CliArgs args)
    {
        // The agent parses its own options (it must also work as a standalone binary without the harness).
        var raw = new List<string>();
        foreach (string name in new[] { "coordinator", "token-file", "models", "emulate", "emulate-memory", "emulate-read-bps", "name", "telemetry-hz", "max-cells", "idle-exit" })
        {
            if (args.Option(name) is string v) raw.AddRange(["--" + name, v]);
        }

        args.EnsureAllUsed();
        if (args.Positional.Count > 0) throw new CliUsageException($"unexpected argument '{args.Positional[0]}'");
        return AgentMain.Run(raw.ToArray());
    }
}
