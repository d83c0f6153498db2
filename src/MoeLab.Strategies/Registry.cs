using System.Globalization;
using MoeLab.Engine.Policies;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Strategies;

public enum StrategyKind
{
    Cache,
    Prefetch,
    Precision,
    Routing,
    Io,
}

/// <summary>What a cache's capacity counts: bytes, or experts as unit-size objects (as the trace simulator may).</summary>
public enum CacheUnit
{
    Bytes,
    Experts,
}

/// <summary>One pool for all layers, or one quota per layer.</summary>
public enum CacheScope
{
    Global,
    PerLayer,
}

/// <summary>A strategy as the user named it: a name and its raw parameters (strings, as YAML or the CLI gave them).</summary>
public sealed record StrategySpec(string Name, IReadOnlyDictionary<string, string> Parameters)
{
    public static StrategySpec Of(string name) => new(name, new Dictionary<string, string>());

    /// <summary>Parses the CLI form <c>name</c> or <c>name:key=value,key=value</c>.</summary>
    public static StrategySpec Parse(string text)
    {
        int colon = text.IndexOf(':');
        if (colon < 0) return Of(text.Trim());
        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string pair in text[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = pair.IndexOf('=');
            if (eq <= 0) throw new StrategyException(text[..colon], pair, "parameters are written key=value");
            parameters[pair[..eq].Trim()] = pair[(eq + 1)..].Trim();
        }

        return new StrategySpec(text[..colon].Trim(), parameters);
    }

    public override string ToString() =>
        Parameters.Count == 0 ? Name : Name + ":" + string.Join(",", Parameters.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value));
}

/// <summary>Everything a strategy may need to be built: the model's shape, the cache size, and optional traces.</summary>
public sealed class StrategyContext
{
    public required ModelShape Shape { get; init; }

    /// <summary>Cache capacity in <see cref="Unit"/>s (the whole pool; per-layer scope divides it).</summary>
    public long Capacity { get; init; }

    public CacheUnit Unit { get; init; } = CacheUnit.Bytes;

    public CacheScope Scope { get; init; } = CacheScope.Global;

    /// <summary>A profiling trace (static-hot, layered-lru, transition, per-expert-bits learn from it).</summary>
    public RoutingTrace? Profile { get; init; }

    /// <summary>The profile, or a refusal naming the policy, what it needs the profile for and where a profile comes from.</summary>
    public RoutingTrace RequireProfile(string policy, string? parameter, string message) =>
        Profile ?? throw new StrategyException(policy, parameter, message + " (a routing trace of this model: `trace:` in an experiment, --profile-trace F in generate and trace record)");

    /// <summary>The future the run will see, for offline bounds (belady, oracle). Null online.</summary>
    public RoutingTrace? Future { get; init; }

    /// <summary>Tokens of <see cref="Future"/> the replay skips (so request times line up).</summary>
    public int FutureSkipTokens { get; init; }

    /// <summary>Next-use times of <see cref="Future"/>, built once and shared (every layer of a per-layer belady uses it).</summary>
    public Cache.FutureIndex? FutureIndex => Future is null ? null : _futureIndex ??= new Cache.FutureIndex(Future, FutureSkipTokens);

    private Cache.FutureIndex? _futureIndex;

    /// <summary>The engine's router, for next-gate prediction. Null in trace replay.</summary>
    public IRouterProbe? Router { get; init; }

    /// <summary>Size of one expert in the cache's unit.</summary>
    public long ExpertSize => Unit == CacheUnit.Experts ? 1 : Shape.ExpertBytes;
}

/// <summary>A bad strategy name or parameter: names the policy, the parameter and what is allowed.</summary>
public sealed class StrategyException(string policy, string? parameter, string message)
    : Exception(parameter is null ? $"strategy '{policy}': {message}" : $"strategy '{policy}', parameter '{parameter}': {message}")
{
    public string Policy { get; } = policy;

    public string? Parameter { get; } = parameter;
}

/// <summary>A typed parameter a strategy accepts, for validation and for <c>moelab strategies</c>.</summary>
public sealed record ParameterInfo(string Name, string Type, string Default, string Description, IReadOnlyList<string>? AllowedValues = null);

/// <summary>Reads a strategy's raw parameters with type checks; unknown keys are an error (see <see cref="EnsureAllUsed"/>).</summary>
public sealed class StrategyParameters(string policy, IReadOnlyDictionary<string, string> raw)
{
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public string Policy => policy;

    public string String(string name, string fallback, IReadOnlyList<string>? allowed = null)
    {
        _used.Add(name);
        if (!raw.TryGetValue(name, out string? value)) return fallback;
        if (allowed is not null && !allowed.Contains(value))
            throw new StrategyException(policy, name, $"'{value}' is not one of {string.Join(", ", allowed)}");
        return value;
    }

    public double Double(string name, double fallback, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        _used.Add(name);
        if (!raw.TryGetValue(name, out string? value)) return fallback;
        if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) || double.IsNaN(d))
            throw new StrategyException(policy, name, $"'{value}' is not a number");
        if (d < min || d > max) throw new StrategyException(policy, name, $"{value} is outside [{min}, {max}]");
        return d;
    }

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        _used.Add(name);
        if (!raw.TryGetValue(name, out string? value)) return fallback;
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i))
            throw new StrategyException(policy, name, $"'{value}' is not a whole number");
        if (i < min || i > max) throw new StrategyException(policy, name, $"{value} is outside [{min}, {max}]");
        return i;
    }

    public bool Bool(string name, bool fallback)
    {
        _used.Add(name);
        if (!raw.TryGetValue(name, out string? value)) return fallback;
        return value.ToLowerInvariant() switch
        {
            "true" or "yes" or "1" => true,
            "false" or "no" or "0" => false,
            _ => throw new StrategyException(policy, name, $"'{value}' is not true or false"),
        };
    }

    /// <summary>Call after reading every parameter: any key not read is a typo or an unsupported option.</summary>
    public void EnsureAllUsed(IReadOnlyList<ParameterInfo> accepted)
    {
        foreach (string key in raw.Keys)
        {
            if (_used.Contains(key)) continue;
            string allowed = accepted.Count == 0 ? "it takes no parameters" : "allowed: " + string.Join(", ", accepted.Select(p => p.Name));
            throw new StrategyException(policy, key, $"unknown parameter; {allowed}");
        }
    }
}

/// <summary>One registered strategy: its stable name, aliases, parameters and factory.</summary>
public sealed record StrategyDescriptor(
    StrategyKind Kind,
    string Name,
    string Summary,
    IReadOnlyList<ParameterInfo> Parameters,
    Func<StrategyParameters, StrategyContext, object> Create,
    params string[] Aliases);

/// <summary>
/// Builds cache descriptors so that scope (global / per-layer) and admission (always / second-hit / bypass) are
/// handled here once, for every replacement policy, with the same parameters.
/// </summary>
public static class CacheCatalog
{
    public static readonly IReadOnlyList<string> AdmissionNames = ["always", "second-hit", "bypass"];

    public static readonly IReadOnlyList<ParameterInfo> CommonParameters =
    [
        new("admission", "string", "always", "which fetched experts are inserted: always, second-hit (only experts missed before, within the window), bypass (none: compute from a transient buffer)", AdmissionNames),
        new("second_hit_window", "int", "experts in the model", "how many recent misses second-hit admission remembers"),
    ];

    /// <summary>
    /// A cache descriptor whose factory builds the policy for a given capacity; scope and admission are applied
    /// around it. With <paramref name="scoped"/> false the factory handles layers itself (layered-lru).
    /// </summary>
    public static StrategyDescriptor Describe(string name, string summary, IReadOnlyList<ParameterInfo> parameters,
        Func<StrategyParameters, StrategyContext, long, Engine.Policies.ICachePolicy> create, bool scoped = true, params string[] aliases) =>
        new(StrategyKind.Cache, name, summary, [.. parameters, .. CommonParameters], (p, ctx) => Build(p, ctx, create, scoped), aliases);

    private static Engine.Policies.ICachePolicy Build(StrategyParameters p, StrategyContext ctx,
        Func<StrategyParameters, StrategyContext, long, Engine.Policies.ICachePolicy> create, bool scoped)
    {
        if (ctx.Capacity < 0) throw new StrategyException(p.Policy, "capacity", $"{ctx.Capacity} is negative");
        string admissionName = p.String("admission", "always", AdmissionNames);
        int window = p.Int("second_hit_window", Math.Max(1, ctx.Shape.ExpertCount), min: 1);
        Engine.Policies.ICachePolicy cache = scoped && ctx.Scope == CacheScope.PerLayer
            ? Cache.PerLayerCache.Equal(ctx.Shape.Layers, ctx.Capacity, quota => create(p, ctx, quota))
            : create(p, ctx, ctx.Capacity);
        var admission = admissionName switch
        {
            "second-hit" => Cache.CacheAdmission.SecondHit,
            "bypass" => Cache.CacheAdmission.Bypass,
            _ => Cache.CacheAdmission.Always,
        };
        return admission == Cache.CacheAdmission.Always ? cache : new Cache.AdmissionFilter(cache, admission, window);
    }
}

/// <summary>
/// The one table of every strategy a user can name (libCacheSim's cache_init.h). No assembly scanning: AOT-safe.
/// Adding a strategy adds one line here and one file with its class.
/// </summary>
public static class StrategyCatalog
{
    public static IReadOnlyList<StrategyDescriptor> All { get; } =
    [
        Cache.Lru.Descriptor,
        Cache.Fifo.Descriptor,
        Cache.Lfu.Descriptor,
        Cache.Arc.Descriptor,
        Cache.S3Fifo.Descriptor,
        Cache.Belady.Descriptor,
        Cache.LfuDecay.Descriptor,
        Cache.StaticHot.Descriptor,
        Cache.LayeredLru.Descriptor,
        Prefetch.NoPrefetch.Descriptor,
        Prefetch.NextGate.Descriptor,
        Prefetch.Transition.Descriptor,
        Prefetch.RepeatLast.Descriptor,
        Prefetch.Oracle.Descriptor,
        Precision.Native.Descriptor,
        Precision.UniformBits.Descriptor,
        Precision.LowBitOnMiss.Descriptor,
        Precision.PerExpertBits.Descriptor,
        Routing.Unchanged.Descriptor,
        Routing.TopKReduce.Descriptor,
        Routing.AdaptiveK.Descriptor,
        Routing.CacheAware.Descriptor,
        Io.FifoIo.Descriptor,
    ];

    public static StrategyDescriptor Find(StrategyKind kind, string name)
    {
        foreach (var d in All)
        {
            if (d.Kind == kind && (d.Name == name || d.Aliases.Contains(name))) return d;
        }

        var names = All.Where(d => d.Kind == kind).Select(d => d.Name).ToList();
        string? near = Nearest(name, names);
        throw new StrategyException(name, null,
            $"no {kind.ToString().ToLowerInvariant()} strategy of that name{(near is null ? "" : $" (did you mean '{near}'?)")}; known: {string.Join(", ", names)}");
    }

    public static object Create(StrategyKind kind, StrategySpec spec, StrategyContext context)
    {
        var d = Find(kind, spec.Name);
        var p = new StrategyParameters(d.Name, spec.Parameters);
        object strategy = d.Create(p, context);
        p.EnsureAllUsed(d.Parameters);
        return strategy;
    }

    public static ICachePolicy CreateCache(StrategySpec spec, StrategyContext context) => (ICachePolicy)Create(StrategyKind.Cache, spec, context);

    public static IPrefetcher CreatePrefetcher(StrategySpec spec, StrategyContext context) => (IPrefetcher)Create(StrategyKind.Prefetch, spec, context);

    public static IPrecisionPolicy CreatePrecision(StrategySpec spec, StrategyContext context) => (IPrecisionPolicy)Create(StrategyKind.Precision, spec, context);

    public static IRoutingPolicy CreateRouting(StrategySpec spec, StrategyContext context) => (IRoutingPolicy)Create(StrategyKind.Routing, spec, context);

    public static IIoScheduler CreateIo(StrategySpec spec, StrategyContext context) => (IIoScheduler)Create(StrategyKind.Io, spec, context);

    /// <summary>The closest known name by edit distance, if it is close enough to be a typo.</summary>
    public static string? Nearest(string name, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (string c in candidates)
        {
            int d = EditDistance(name, c);
            if (d < bestDistance) (best, bestDistance) = (c, d);
        }

        return bestDistance <= Math.Max(2, name.Length / 3) ? best : null;
    }

    private static int EditDistance(string a, string b)
    {
        var prev = new int[b.Length + 1];
        var cur = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) prev[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            cur[0] = i;
            for (int j = 1; j <= b.Length; j++)
                cur[j] = Math.Min(Math.Min(cur[j - 1] + 1, prev[j] + 1), prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (prev, cur) = (cur, prev);
        }

        return prev[b.Length];
    }
}
