using System.Text.Json;
using System.Text.Json.Serialization;
using MoeLab.DeviceAgent.Api;

namespace MoeLab.Harness.Coordinator;

/// <summary>
/// The operator side of the coordinator: a harness (<c>moelab run</c> with target <c>agents</c>) submits cells to a
/// coordinator that is already running (<c>moelab serve</c>) and reads their state back. Authenticated with the
/// enrolment token: whoever may enrol agents may also give them work.
/// </summary>
public static class QueueApi
{
    public const string Cells = "/v1/queue";

    public static string Cell(string cellId) => $"/v1/queue/{Uri.EscapeDataString(cellId)}";

    public static bool IsQueuePath(string path) => path == Cells || path.StartsWith(Cells + "/", StringComparison.Ordinal);
}

public sealed record SubmittedCell(string CellId, JsonElement Cell);

public sealed record SubmitRequest(SubmittedCell[] Cells);

/// <summary>How many cells were new, how many failed ones were queued again, and how many were already there.</summary>
public sealed record SubmitResponse(int Queued, int Requeued, int AlreadyPresent);

/// <summary>
/// One cell as the coordinator sees it. Events and the result are included once the cell has finished (they no
/// longer change then); <c>TokensReceived</c> shows progress while it runs.
/// </summary>
public sealed record CellStatus(
    string CellId,
    CellState State,
    int Attempt,
    string? AgentId,
    string? Error,
    string[] History,
    int TokensReceived,
    JsonElement? Result,
    TokenEvent[]? Tokens,
    string[]? MetricNames,
    TelemetryRow[]? Telemetry)
{
    public bool IsFinished => State is CellState.Succeeded or CellState.Failed;
}

public sealed record QueueStatus(CellStatus[] Cells, int AgentsRegistered, double LeaseTimeoutSeconds);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = false,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, UseStringEnumConverter = true)]
[JsonSerializable(typeof(SubmitRequest))]
[JsonSerializable(typeof(SubmitResponse))]
[JsonSerializable(typeof(CellStatus))]
[JsonSerializable(typeof(QueueStatus))]
public sealed partial class QueueApiJson : JsonSerializerContext;
