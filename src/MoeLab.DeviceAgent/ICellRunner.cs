using System.Text.Json;
using MoeLab.DeviceAgent.Api;

namespace MoeLab.DeviceAgent;

/// <summary>
/// Executes one resolved run cell with the engine, exactly as the harness's local target does. The agent supplies
/// the models directory (for path confinement) and a callback that receives every generated token.
/// </summary>
public interface ICellRunner
{
    /// <summary>
    /// Checks, before anything runs, that the cell can run here (its model exists inside the directory; its RAM
    /// budget plus the model's resident weights fit in the memory the device has left). Returns null when it can,
    /// else the reason.
    /// </summary>
    string? Preflight(JsonElement cell, ModelDirectory models, long availableMemoryBytes);

    /// <summary>Runs the cell, reporting tokens as they come; returns the cell's result document.</summary>
    JsonElement Run(JsonElement cell, ModelDirectory models, Action<TokenEvent> onToken, CancellationToken cancel);
}
