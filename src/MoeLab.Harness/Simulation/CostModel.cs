using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// The device cost model the simulator charges time with. Decode is memory-bound, so compute is charged per weight
/// byte: an expert's matvec takes ExpertBytes / expert throughput, a layer's dense part DenseBytes / L / dense
/// throughput. Reads go to one SSD queue in issue order (FIFO); a layer's misses are one batch of
/// ceil(bytes / block) requests at the queue depth (<see cref="StorageModel.ReadSeconds"/>).
/// </summary>
public sealed record CostModel
{
    public required string ProfileName { get; init; }

    public required StorageModel Storage { get; init; }

    /// <summary>Bytes of one routed expert as stored (what a miss reads and the matvec streams).</summary>
    public required long ExpertBytes { get; init; }

    /// <summary>Dense weight bytes read per token (all layers together); see <see cref="DenseFootprint"/>.</summary>
    public required long DenseBytesPerToken { get; init; }

    public required double ExpertBytesPerSecond { get; init; }

    public required double DenseBytesPerSecond { get; init; }

    public double PerTokenOverheadSeconds { get; init; }

    public required long BlockBytes { get; init; }

    public required int QueueDepth { get; init; }

    /// <summary>RAM the device leaves the model (weights + page cache).</summary>
    public long RamBytes { get; init; }

    public double ExpertComputeSeconds => ExpertBytes / ExpertBytesPerSecond;

    public double DenseSecondsPerToken => (DenseBytesPerToken / DenseBytesPerSecond) + PerTokenOverheadSeconds;

    public double ReadSeconds(long bytes) => Storage.ReadSeconds(bytes, BlockBytes, QueueDepth);

    public static CostModel For(DeviceProfile profile, ModelPreset preset, GgmlType expertType, GgmlType denseType, long? blockBytes = null, int? queueDepth = null) => new()
    {
        ProfileName = profile.Name,
        Storage = new StorageModel(profile.Storage.Reads),
        ExpertBytes = preset.ExpertBytes(expertType),
        DenseBytesPerToken = DenseFootprint.BytesPerToken(preset, denseType),
        ExpertBytesPerSecond = profile.Compute.ExpertGbPerS * 1e9,
        DenseBytesPerSecond = profile.Compute.DenseGbPerS * 1e9,
        PerTokenOverheadSeconds = profile.Compute.PerTokenOverheadMs * 1e-3,
        BlockBytes = blockBytes ?? profile.Storage.DefaultBlockKib * 1024L,
        QueueDepth = queueDepth ?? profile.Storage.DefaultQueueDepth,
        RamBytes = profile.Memory.AvailableToModelBytes,
    };
}
