using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoeLab.DeviceAgent.Api;

/// <summary>
/// Version 1 of the agent ↔ coordinator protocol. The agent dials out (a phone cannot host a server): it registers,
/// long-polls for a cell, streams event batches, heartbeats and completes. Every message is JSON through
/// <see cref="AgentApiJson"/> (source-generated: the agent is NativeAOT).
/// </summary>
public static class AgentApi
{
    public const string Version = "v1";

    public const string Register = "/v1/agents/register";
    public const string Work = "/v1/work";
    public const string Heartbeat = "/v1/heartbeat";

    public static string Events(string cellId) => $"/v1/cells/{Uri.EscapeDataString(cellId)}/events";

    public static string Complete(string cellId) => $"/v1/cells/{Uri.EscapeDataString(cellId)}/complete";

    /// <summary>Largest request body the coordinator accepts; the agent splits event batches below it.</summary>
    public const int MaxBodyBytes = 4 << 20;
}

/// <summary>What the agent tells the coordinator about the device it runs on.</summary>
public sealed record DeviceDescription(
    string Name,
    string Os,
    string Architecture,
    string CpuModel,
    int Cores,
    long RamBytes,
    long AvailableRamBytes,
    string ModelsDirectory,
    string[] Models,
    string? DiskDevice,
    EmulationReport? Emulation,
    Dictionary<string, string> UnavailableTelemetry);

/// <summary>What an emulated device asked for and what the OS actually applied.</summary>
public sealed record EmulationReport(string Profile, long MemoryLimitBytes, bool MemoryLimitApplied, long? ReadBytesPerSecond, bool ReadLimitApplied, string Notes);

public sealed record RegisterRequest(string EnrolmentToken, string ProtocolVersion, DeviceDescription Device);

public sealed record RegisterResponse(string AgentId, string SessionToken, double HeartbeatSeconds, double LeaseTimeoutSeconds);

/// <summary>A cell leased to an agent. <c>Cell</c> is the resolved run cell as the harness serialized it.</summary>
public sealed record WorkLease(string CellId, int Attempt, JsonElement Cell);

/// <summary>
/// One generated token with the engine's counters for it. Hits, Misses and PrefetchHits are disjoint: each expert
/// the router demanded is exactly one of them (a prefetch hit is not also a hit).
/// </summary>
public sealed record TokenEvent(
    int Repetition,
    int Index,
    int TokenId,
    double WallMs,
    int Hits,
    int Misses,
    int PrefetchHits,
    long BytesRead,
    double IoMs,
    double ComputeMs,
    double StallMs);

/// <summary>One telemetry row: seconds since the cell started and one value per metric (null = unavailable).</summary>
public sealed record TelemetryRow(double Seconds, double?[] Values);

/// <summary>
/// A batch of events for one lease. <c>Sequence</c> numbers batches 0, 1, 2… per (cell, attempt); the coordinator
/// keeps the highest it applied, so a resent batch is acknowledged without being applied twice.
/// </summary>
public sealed record EventBatch(int Attempt, long Sequence, TokenEvent[] Tokens, string[]? MetricNames, TelemetryRow[] Telemetry);

public sealed record EventAck(long AppliedThrough);

public sealed record CompletionRequest(int Attempt, bool Succeeded, string? Error, long EventBatches, JsonElement? Result);

public sealed record ErrorResponse(string Error);

public sealed record HeartbeatRequest(string? CellId, int Attempt);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = false,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(RegisterRequest))]
[JsonSerializable(typeof(RegisterResponse))]
[JsonSerializable(typeof(WorkLease))]
[JsonSerializable(typeof(EventBatch))]
[JsonSerializable(typeof(EventAck))]
[JsonSerializable(typeof(CompletionRequest))]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(HeartbeatRequest))]
public sealed partial class AgentApiJson : JsonSerializerContext;
