using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// The device cost model the simulator charges time with. Decode is memory-bound, so compute is charged per weight
/// byte: an expert's matvec takes ExpertBytes / expert throughput, a layer's dense part DenseBytes / L / dense
/// throughput. An expert is read as ceil(bytes / block) equal requests (the engine: one per gate/up/down slice), queued
/// FIFO to <see cref="QueueDepth"/> reader threads (<see cref="DiskQueue"/>).
/// </summary>
public sealed record CostModel
{
    public required string ProfileName { get; init; }

    public required StorageModel Storage { get; init; }

    /// <summary>The storage cache below the device (<see cref="StorageCache"/>): its read rates, or null when the device has none.</summary>
    public StorageModel? CachedStorage { get; init; }

    /// <summary>Bytes that storage cache holds.</summary>
    public long StorageCacheBytes { get; init; }

    public bool HasStorageCache => CachedStorage is not null && StorageCacheBytes > 0;

    /// <summary>Bytes of one routed expert as stored (what a miss reads and the matvec streams).</summary>
    public required long ExpertBytes { get; init; }

    /// <summary>Dense weight bytes read per token (all layers together); see <see cref="DenseFootprint"/>.</summary>
    public required long DenseBytesPerToken { get; init; }

    public required double ExpertBytesPerSecond { get; init; }

    public required double DenseBytesPerSecond { get; init; }

    public double PerTokenOverheadSeconds { get; init; }

    /// <summary>Prefetch reads (served while the compute runs) take this many times their measured time (≥ 1).</summary>
    public double PrefetchReadSlowdown { get; init; } = 1;

    /// <summary>Charged to compute each time it resumes after a stall (DeviceProfile.ComputeSpec.ResumeAfterStallUs).</summary>
    public double ResumeAfterStallSeconds { get; init; }

    public required long BlockBytes { get; init; }

    public required int QueueDepth { get; init; }

    /// <summary>Added before a read queued while its reader was idle (DeviceProfile.StorageSpec.ReaderWakeUs).</summary>
    public double ReaderWakeSeconds { get; init; }

    /// <summary>RAM the device leaves the model (weights + page cache).</summary>
    public long RamBytes { get; init; }

    public double ExpertComputeSeconds => ExpertBytes / ExpertBytesPerSecond;

    public double DenseSecondsPerToken => (DenseBytesPerToken / DenseBytesPerSecond) + PerTokenOverheadSeconds;

    /// <summary>Requests one expert's read takes (the engine issues gate, up and down as separate reads).</summary>
    public int ReadsPerExpert => ReadsFor(ExpertBytes);

    public int ReadsFor(long bytes) => (int)Math.Max(1, (bytes + BlockBytes - 1) / BlockBytes);

    public DiskQueue NewDiskQueue() => new(Storage, QueueDepth, CachedStorage, ReaderWakeSeconds);

    public double ReadSeconds(long bytes) => Storage.ReadSeconds(bytes, BlockBytes, QueueDepth);

    /// <summary>One of an expert's gate, up and down reads (the engine reads each slice at once; they are the same size in a preset).</summary>
    public static long SliceBytes(long expertBytes) => (expertBytes + 2) / 3;

    /// <summary>
    /// Whether the reads of an expert fall outside the sizes the profile measured (the edge point stands in), in words;
    /// null when they are inside. For <c>moelab sim</c> to say so.
    /// </summary>
    public string? ReadSizeNote()
    {
        long each = ExpertBytes / ReadsPerExpert;
        int side = Storage.Clamps(each);
        if (side == 0) return null;
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        return side < 0
            ? string.Create(inv, $"profile '{ProfileName}' measured reads down to {Storage.MinBlockBytes / 1024:0.#} KiB; this model's {each / 1024.0:0.#} KiB reads are charged that size's latency (clamped, not extrapolated)")
            : string.Create(inv, $"profile '{ProfileName}' measured reads up to {Storage.MaxBlockBytes / 1024:0.#} KiB; this model's {each / 1024.0:0.#} KiB reads are charged that size's throughput (clamped, not extrapolated)");
    }

    public static CostModel For(DeviceProfile profile, ModelPreset preset, GgmlType expertType, GgmlType denseType, long? blockBytes = null, int? queueDepth = null) => new()
    {
        ProfileName = profile.Name,
        Storage = new StorageModel(profile.Storage.Reads),
        CachedStorage = profile.Storage.Cache is { } c ? new StorageModel(c.Reads) : null,
        StorageCacheBytes = profile.Storage.Cache?.Bytes ?? 0,
        ExpertBytes = preset.ExpertBytes(expertType),
        DenseBytesPerToken = DenseFootprint.BytesPerToken(preset, denseType),
        ExpertBytesPerSecond = profile.Compute.ExpertGbPerS * 1e9,
        DenseBytesPerSecond = profile.Compute.DenseGbPerS * 1e9,
        PerTokenOverheadSeconds = profile.Compute.PerTokenOverheadMs * 1e-3,
        ResumeAfterStallSeconds = profile.Compute.ResumeAfterStallUs * 1e-6,
        PrefetchReadSlowdown = Math.Max(1, profile.Storage.ReadSlowdownUnderCompute),
        BlockBytes = blockBytes ?? (profile.Storage.DefaultBlockKib > 0 ? profile.Storage.DefaultBlockKib * 1024L : SliceBytes(preset.ExpertBytes(expertType))),
        QueueDepth = queueDepth ?? profile.Storage.DefaultQueueDepth,
        ReaderWakeSeconds = profile.Storage.ReaderWakeUs * 1e-6,
        RamBytes = profile.Memory.AvailableToModelBytes,
    };
}
