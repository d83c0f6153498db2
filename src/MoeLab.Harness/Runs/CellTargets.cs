using MoeLab.Harness.Experiments;

namespace MoeLab.Harness.Runs;

/// <summary>One way to run cells, selected by the experiment's <c>target:</c> (exact name, or prefix ending in ':').</summary>
public sealed record CellTargetFactory(string Name, string Description, Func<string, Experiment, TextWriter, ICellTarget> Create)
{
    public bool Matches(string target) => Name.EndsWith(':') ? target.StartsWith(Name, StringComparison.Ordinal) : target == Name;
}

/// <summary>The one table of targets. Adding a target adds one line here.</summary>
public static class CellTargets
{
    public static IReadOnlyList<CellTargetFactory> All { get; } =
    [
        new("local", "this machine, with the real engine (synthesized models are cached in models/)", (_, _, _) => new LocalTarget()),
        new("sim:", "the trace-driven simulator with a device profile (experiments/devices/PROFILE.yaml)", (name, _, _) => new SimTarget(name["sim:".Length..])),
        new("agents", "device agents dialing the coordinator this run starts", (_, e, log) => new AgentsTarget(e.Agents!, log)),
    ];

    public static ICellTarget Create(string target, Experiment experiment, TextWriter log)
    {
        var factory = All.FirstOrDefault(f => f.Matches(target))
            ?? throw new InvalidOperationException($"target '{target}' is not available in this build; available: {string.Join(", ", All.Select(f => f.Name))}");
        return factory.Create(target, experiment, log);
    }
}
