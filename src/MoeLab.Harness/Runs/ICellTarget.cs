using MoeLab.DeviceAgent.Api;

namespace MoeLab.Harness.Runs;

/// <summary>
/// Where a resolved cell runs: the local engine, the trace simulator with a device profile, or device agents.
/// The harness's run loop sees only this seam; every target answers with the same <see cref="CellResult"/>.
/// </summary>
public interface ICellTarget
{
    /// <summary>As written in YAML: <c>local</c>, <c>sim:iphone-17-pro</c>, <c>agents</c>.</summary>
    string Name { get; }

    /// <summary>Checks, before anything runs, that the cell can run on this target; null when it can, else the reason.</summary>
    string? Preflight(RunCell cell);

    /// <summary>Runs one cell (all its repetitions), reporting tokens as they come.</summary>
    CellResult Run(RunCell cell, Action<TokenEvent> onToken, CancellationToken cancel);
}
