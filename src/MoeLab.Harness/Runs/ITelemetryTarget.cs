using MoeLab.Harness.Results;

namespace MoeLab.Harness.Runs;

/// <summary>A target that measures telemetry where the cell ran (a device agent streams its own); the harness then does not sample the host.</summary>
public interface ITelemetryTarget
{
    CellTelemetry TelemetryOf(string cellId);
}

/// <summary>A target that benefits from knowing every pending cell up front (agents take cells in parallel).</summary>
public interface IBatchTarget
{
    void Prepare(IReadOnlyList<MoeLab.DeviceAgent.Api.RunCell> pending);
}
