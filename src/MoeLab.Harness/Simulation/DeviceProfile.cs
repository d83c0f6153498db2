using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// A device the simulator predicts for (experiments/devices/NAME.yaml): RAM the model may use, the SSD's read
/// bandwidth and latency by block size and queue depth, and the throughput of the expert and dense matvecs.
/// Every figure should carry a source (<see cref="Sources"/>); estimates say so.
/// Units: MB and GB are decimal (10^6, 10^9 bytes); RAM in GiB.
/// </summary>
public sealed class DeviceProfile
{
    public string Name { get; set; } = "";

    public string Description { get; set; } = "";

    public MemorySpec Memory { get; set; } = new();

    public StorageSpec Storage { get; set; } = new();

    public ComputeSpec Compute { get; set; } = new();

    /// <summary>Where each figure comes from: figure (a YAML path), source, and whether it is an estimate.</summary>
    public List<SourceNote> Sources { get; set; } = [];

    public sealed class MemorySpec
    {
        /// <summary>Physical RAM of the device.</summary>
        public double TotalGib { get; set; }

        /// <summary>RAM one app may hold for model weights + page cache (what the OS leaves it; jetsam limit on iOS).</summary>
        public double AvailableToModelGib { get; set; }

        [YamlIgnore]
        public long AvailableToModelBytes => (long)(AvailableToModelGib * (1L << 30));
    }

    public sealed class StorageSpec
    {
        public string Device { get; set; } = "";

        /// <summary>
        /// Read size the engine issues, KiB; an expert is read as ceil(size / block) equal requests. 0: one read per gate, up
        /// and down slice of the simulated model (ceil(expert bytes / 3)), as MoeLab's engine issues them.
        /// </summary>
        public int DefaultBlockKib { get; set; } = 1024;

        public int DefaultQueueDepth { get; set; } = 8;

        /// <summary>Measured or published random-read points; interpolated as <see cref="StorageModel"/> says.</summary>
        public List<ReadPoint> Reads { get; set; } = [];

        /// <summary>
        /// A cache below the device that O_DIRECT does not bypass (a VM host's page cache over the virtual disk), or null:
        /// bare-metal SSDs and phones have none. <see cref="Reads"/> are then the device's rate for ranges not in it.
        /// </summary>
        public StorageCacheSpec? Cache { get; set; }

        /// <summary>
        /// Microseconds an idle reader thread takes to start a read after the demand, while the compute holds the CPUs
        /// (the engine's router thread goes on computing the layer's hits); 0 for devices whose figures are published.
        /// </summary>
        public double ReaderWakeUs { get; set; }

        /// <summary>
        /// How many times as long a read takes while the decode step computes beside it (the engine's prefetch reads are
        /// served during compute, its demand reads mostly while the compute waits); 1 or 0 = no difference, as published
        /// profiles assume. Measured at the engine's depth, in the probe's bursts.
        /// </summary>
        public double ReadSlowdownUnderCompute { get; set; }
    }

    public sealed class StorageCacheSpec
    {
        /// <summary>Bytes of the file it holds (LRU over byte ranges), MiB.</summary>
        public double Mib { get; set; }

        /// <summary>Random-read points for ranges it holds, as <see cref="StorageSpec.Reads"/>.</summary>
        public List<ReadPoint> Reads { get; set; } = [];

        [YamlIgnore]
        public long Bytes => (long)(Mib * (1 << 20));
    }

    public sealed class ReadPoint
    {
        public double BlockKib { get; set; }

        public int QueueDepth { get; set; }

        /// <summary>Sustained read throughput at this block size and depth, MB/s.</summary>
        public double ReadMbPerS { get; set; }

        /// <summary>Mean completion latency of one request at this depth, microseconds.</summary>
        public double LatencyUs { get; set; }
    }

    public sealed class ComputeSpec
    {
        /// <summary>Quantized weight bytes per second the expert matvec (gate/up/down, one token) streams through.</summary>
        public double ExpertGbPerS { get; set; }

        /// <summary>Weight bytes per second for the dense part (attention, shared expert, router, output head).</summary>
        public double DenseGbPerS { get; set; }

        /// <summary>Fixed per-token cost outside the weights (sampling, kernel launches, KV attention), ms.</summary>
        public double PerTokenOverheadMs { get; set; }

        /// <summary>
        /// Microseconds the expert compute loses each time it resumes after waiting for a read (the compute threads went to
        /// sleep in the stall and must wake; the expert is computed alone instead of in a batch); 0 for published profiles.
        /// </summary>
        public double ResumeAfterStallUs { get; set; }
    }

    public sealed class SourceNote
    {
        public string Figure { get; set; } = "";

        public string Source { get; set; } = "";

        public bool Estimate { get; set; }
    }

    private static readonly IDeserializer Reader = new DeserializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance).Build();

    private static readonly ISerializer Writer = new SerializerBuilder().WithNamingConvention(UnderscoredNamingConvention.Instance)
        .ConfigureDefaultValuesHandling(DefaultValuesHandling.Preserve).Build();

    public static DeviceProfile Parse(string yaml, string name)
    {
        DeviceProfile p;
        try
        {
            p = Reader.Deserialize<DeviceProfile>(yaml) ?? throw new InvalidDataException($"{name}: empty device profile");
        }
        catch (YamlException e)
        {
            throw new InvalidDataException($"{name}:{e.Start.Line}:{e.Start.Column}: {e.InnerException?.Message ?? e.Message}");
        }

        p.Validate(name, yaml);
        return p;
    }

    public static DeviceProfile Load(string path) => Parse(File.ReadAllText(path), path);

    /// <summary>Finds a profile by name in experiments/devices (searching up from the working directory), or a path.</summary>
    public static DeviceProfile Resolve(string nameOrPath)
    {
        if (File.Exists(nameOrPath)) return Load(nameOrPath);
        string? dir = DevicesDirectory();
        string candidate = dir is null ? "" : Path.Combine(dir, nameOrPath + ".yaml");
        if (dir is not null && File.Exists(candidate)) return Load(candidate);
        var known = dir is null ? [] : Directory.GetFiles(dir, "*.yaml").Select(f => Path.GetFileNameWithoutExtension(f)!).ToArray();
        throw new FileNotFoundException($"no device profile '{nameOrPath}' (looked in {dir ?? "experiments/devices, not found"}); known: {string.Join(", ", known)}");
    }

    /// <summary>experiments/devices of the nearest enclosing checkout: above the working directory, else above the binary.</summary>
    public static string? DevicesDirectory()
    {
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                string p = Path.Combine(d.FullName, "experiments", "devices");
                if (Directory.Exists(p)) return p;
            }
        }

        return null;
    }

    public string ToYaml() => Writer.Serialize(this);

    public void Validate(string name) => Validate(name, null);

    /// <param name="yaml">The profile's text, to name the line of a bad figure (null: the path alone).</param>
    private void Validate(string name, string? yaml)
    {
        void Fail(string path, string what) => throw new InvalidDataException($"{name}{LineOf(yaml, path)}: {path}: {what}");

        if (string.IsNullOrWhiteSpace(Name)) throw new InvalidDataException($"{name}: 'name' is required");
        if (Memory.AvailableToModelGib <= 0) Fail("memory.available_to_model_gib", "must be positive");
        if (Storage.Reads.Count == 0) Fail("storage.reads", "needs at least one (block_kib, queue_depth, read_mb_per_s, latency_us) point");
        if (Storage.DefaultBlockKib < 0) Fail("storage.default_block_kib", "must be 0 (one read per gate/up/down slice) or a size in KiB");
        if (Storage.ReadSlowdownUnderCompute < 0) Fail("storage.read_slowdown_under_compute", "must not be negative (0 or 1: reads are as fast while the compute runs)");
        if (Storage.DefaultQueueDepth < 1) Fail("storage.default_queue_depth", "must be at least 1");
        ValidateReads(Storage.Reads, "storage.reads");
        if (Storage.Cache is { } cache)
        {
            if (cache.Mib <= 0 || cache.Reads.Count == 0) Fail("storage.cache", "needs mib > 0 and at least one read point (omit it for a device without one)");
            ValidateReads(cache.Reads, "storage.cache.reads");
        }

        if (Compute.ExpertGbPerS <= 0 || Compute.DenseGbPerS <= 0) Fail("compute", "expert_gb_per_s and dense_gb_per_s must be positive");
        if (Compute.ResumeAfterStallUs < 0) Fail("compute.resume_after_stall_us", "must not be negative");

        void ValidateReads(List<ReadPoint> reads, string path)
        {
            for (int i = 0; i < reads.Count; i++)
            {
                var r = reads[i];
                if (r.BlockKib <= 0 || r.QueueDepth <= 0 || r.ReadMbPerS <= 0 || r.LatencyUs < 0)
                {
                    Fail($"{path}[{i}]", string.Create(CultureInfo.InvariantCulture, $"block_kib ({r.BlockKib}), queue_depth ({r.QueueDepth}) and read_mb_per_s ({r.ReadMbPerS}) must be positive, latency_us ({r.LatencyUs}) not negative"));
                }

                // Two figures for one size and depth leave the interpolation between sizes undefined.
                int same = reads.FindIndex(q => q.BlockKib == r.BlockKib && q.QueueDepth == r.QueueDepth);
                if (same < i) Fail($"{path}[{i}]", string.Create(CultureInfo.InvariantCulture, $"a second point at block_kib {r.BlockKib}, queue_depth {r.QueueDepth} ({path}[{same}] is the first); keep one"));
            }
        }
    }

    /// <summary>":line" of the node at a dotted path with [index] steps (storage.reads[3]) in the profile's YAML, or "".</summary>
    private static string LineOf(string? yaml, string path)
    {
        if (yaml is null) return "";
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(yaml));
            YamlNode? node = stream.Documents.Count > 0 ? stream.Documents[0].RootNode : null;
            foreach (string part in path.Split('.'))
            {
                int bracket = part.IndexOf('[', StringComparison.Ordinal);
                string key = bracket < 0 ? part : part[..bracket];
                node = node is YamlMappingNode map && map.Children.TryGetValue(new YamlScalarNode(key), out var child) ? child : null;
                if (bracket >= 0 && node is YamlSequenceNode seq)
                {
                    int index = int.Parse(part[(bracket + 1)..^1], CultureInfo.InvariantCulture);
                    node = index < seq.Children.Count ? seq.Children[index] : null;
                }

                if (node is null) return "";
            }

            return node is null ? "" : ":" + node.Start.Line.ToString(CultureInfo.InvariantCulture);
        }
        catch (YamlException)
        {
            return "";
        }
    }
}
