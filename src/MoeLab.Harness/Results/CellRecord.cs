using MoeLab.DeviceAgent.Api;

namespace MoeLab.Harness.Results;

/// <summary>Telemetry of one cell: metric names (units in the names) and rows; a null value was unavailable.</summary>
public sealed record CellTelemetry(string[] MetricNames, TelemetryRow[] Rows, Dictionary<string, string> Unavailable)
{
    public static CellTelemetry None(string why) => new([], [], new Dictionary<string, string> { ["all"] = why });
}

/// <summary>
/// Everything one finished cell produced, written atomically as <c>cells/ID.json</c> the moment the cell ends: its
/// place in the matrix, the run cell exactly as executed, the target's result with every token, and telemetry.
/// Every other results file is a view computed from these records.
/// </summary>
public sealed record CellRecord
{
    public required string CellId { get; init; }

    public required string Name { get; init; }

    public required string ConfigHash { get; init; }

    public required Dictionary<string, string> Values { get; init; }

    public bool IsBaseline { get; init; }

    public required string Target { get; init; }

    public required RunCell Cell { get; init; }

    public required CellResult Result { get; init; }

    public required CellTelemetry Telemetry { get; init; }

    public required DateTimeOffset Started { get; init; }

    public required DateTimeOffset Finished { get; init; }
}

/// <summary>A cell that failed: kept apart from finished cells so <c>--resume</c> runs it again.</summary>
public sealed record CellFailure(string CellId, string Name, string Target, string Error, DateTimeOffset At);
