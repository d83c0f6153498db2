using System.Globalization;
using MoeLab.DeviceAgent;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Engine.Telemetry;
using MoeLab.Harness.Traces;
using MoeLab.Strategies;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// Everything a simulation needs, resolved from names (the CLI's and a sim cell's): trace, model preset, device
/// profile, types, strategies; and the capacity list, where <c>auto</c> = the RAM the profile leaves the model minus
/// the dense weights (or all of it in page-cache mode).
/// </summary>
public sealed record SimulationSetup
{
    public required RoutingTrace Trace { get; init; }

    public int SkipTokens { get; init; }

    public int? MaxTokens { get; init; }

    public int WarmupTokens { get; init; }

    public ModelPreset? Preset { get; init; }

    public GgmlType ExpertType { get; init; } = GgmlType.Q4_K;

    public GgmlType DenseType { get; init; } = GgmlType.Q4_K;

    public DeviceProfile? Profile { get; init; }

    public StrategySpec Cache { get; init; } = StrategySpec.Of("lru");

    public StrategySpec? Prefetch { get; init; }

    public CacheUnit Unit { get; init; } = CacheUnit.Experts;

    public CacheScope Scope { get; init; } = CacheScope.Global;

    public bool PageCache { get; init; }

    public long? BlockBytes { get; init; }

    public int? QueueDepth { get; init; }

    public bool RecordTokens { get; init; }

    public CostModel? Cost => Profile is null || Preset is null ? null : CostModel.For(Profile, Preset, ExpertType, DenseType, BlockBytes, QueueDepth);

    public long? ExpertBytes => Preset?.ExpertBytes(ExpertType);

    public SimulationOptions Options() => new()
    {
        Trace = Trace, SkipTokens = SkipTokens, MaxTokens = MaxTokens, WarmupTokens = WarmupTokens, Cache = Cache, Prefetch = Prefetch, Unit = Unit, Scope = Scope, ExpertBytes = ExpertBytes,
        Cost = Cost, DenseInCache = PageCache, RecordTokens = RecordTokens,

        // The replayed trace doubles as the profile static-hot, layered-lru and transition:source=profile learn from,
        // as an experiment's trace: does on the local target. Learned from the very workload it replays, that profile
        // is optimistic: an upper bound for those policies, as the report should say when it matters.
        Profile = Trace,
    };

    /// <summary>Checks that the trace fits the preset's shape (the sim predicts for the preset's full model).</summary>
    public void CheckShape()
    {
        if (Preset is null) return;
        if (Trace.Layers != Preset.MoeLayerCount)
            throw new ArgumentException($"the trace has {Trace.Layers} MoE layers but {Preset.Name} has {Preset.MoeLayerCount}; record or synthesize a trace of the full model's shape");
        if (Trace.ExpertsPerLayer > Preset.Experts)
            throw new ArgumentException($"the trace has {Trace.ExpertsPerLayer} experts per layer but {Preset.Name} has {Preset.Experts}");
    }

    /// <summary>Parses "64,128,192", byte sizes ("8GiB") in the bytes unit, or "auto".</summary>
    public IReadOnlyList<long> Capacities(string text)
    {
        var list = new List<long>();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (part == "auto") list.Add(AutoCapacity());
            else if (Unit == CacheUnit.Bytes) list.Add(AgentMain.ByteCount(part, "capacity"));
            else if (long.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n) && n >= 0) list.Add(n);
            else throw new ArgumentException($"--capacity: '{part}' is not a whole number of experts (or 'auto'; byte sizes need --unit bytes)");
        }

        if (list.Count == 0) throw new ArgumentException("--capacity needs at least one value");
        return list;
    }

    /// <summary>RAM the profile leaves the model, minus the dense weights unless they live in the same page cache.</summary>
    public long AutoCapacity()
    {
        if (Profile is null || Preset is null) throw new ArgumentException("--capacity auto needs --profile and --model-preset");
        long ram = Profile.Memory.AvailableToModelBytes;
        long bytes = PageCache ? ram : ram - DenseFootprint.BytesPerToken(Preset, DenseType);
        if (bytes < 0) throw new ArgumentException($"the dense weights of {Preset.Name} ({DenseFootprint.BytesPerToken(Preset, DenseType) / 1e9:F2} GB) do not fit in {Profile.Name}'s {ram / 1e9:F2} GB");
        return Unit == CacheUnit.Bytes ? bytes : bytes / Preset.ExpertBytes(ExpertType);
    }

    public static GgmlType ParseType(string text, string what) =>
        Enum.TryParse<GgmlType>(text, ignoreCase: true, out var t) && GgmlTypeInfo.IsKnown((uint)t)
            ? t
            : throw new ArgumentException($"--{what}: '{text}' is not a ggml type (e.g. Q4_K, Q4_0, Q8_0, Q2_K, F16)");

    public static ModelPreset FindPreset(string name) =>
        ModelPreset.Find(name) ?? throw new ArgumentException($"unknown model preset '{name}'; known: {string.Join(", ", ModelPreset.All.Select(p => p.Name))}");

    /// <summary>The preset a trace names in its header ("model"), if any.</summary>
    public static ModelPreset? PresetOf(RoutingTrace trace) =>
        trace.Header.TryGetValue("model", out string? m) ? ModelPreset.Find(m) : null;

    public static CacheUnit ParseUnit(string text) => text switch
    {
        "experts" => CacheUnit.Experts,
        "bytes" => CacheUnit.Bytes,
        _ => throw new ArgumentException($"--unit: '{text}' is not experts or bytes"),
    };

    public static CacheScope ParseScope(string text) => text switch
    {
        "global" => CacheScope.Global,
        "per-layer" => CacheScope.PerLayer,
        _ => throw new ArgumentException($"--scope: '{text}' is not global or per-layer"),
    };
}
