using MoeLab.Strategies;

namespace MoeLab.Harness.Experiments;

/// <summary>The matrix axes, in the order cells are named and expanded.</summary>
public static class Axes
{
    public const string Cache = "cache";
    public const string Budget = "budget";
    public const string Prefetch = "prefetch";
    public const string Precision = "precision";
    public const string Routing = "routing";
    public const string IoMode = "io_mode";
    public const string Io = "io";

    public static IReadOnlyList<string> All { get; } = [Cache, Budget, Prefetch, Precision, Routing, IoMode, Io];

    /// <summary>The strategy kind behind an axis, or null for budget and io_mode (plain values).</summary>
    public static StrategyKind? KindOf(string axis) => axis switch
    {
        Cache => StrategyKind.Cache,
        Prefetch => StrategyKind.Prefetch,
        Precision => StrategyKind.Precision,
        Routing => StrategyKind.Routing,
        Io => StrategyKind.Io,
        _ => null,
    };

    /// <summary>The value a cell gets on an axis the experiment does not sweep (the engine's built-in behaviour).</summary>
    public static string DefaultOf(string axis) => axis switch
    {
        Cache => "lru",
        Budget => "all",
        Prefetch => "none",
        Precision => "native",
        Routing => "unchanged",
        IoMode => "direct",
        Io => "fifo",
        _ => throw new ArgumentOutOfRangeException(nameof(axis), axis, "not a matrix axis"),
    };

    public static IReadOnlyList<string> IoModes { get; } = ["direct", "buffered"];
}

/// <summary>One value on an axis: its canonical text plus the parsed strategy or budget behind it.</summary>
public sealed record AxisValue(string Text, StrategySpec? Strategy = null, BudgetSpec? Budget = null)
{
    /// <summary>True when an exclusion or baseline naming <paramref name="text"/> selects this value (a bare policy name matches any parameters).</summary>
    public bool Matches(string text) => Text == text || Strategy?.Name == text;
}

public sealed record Axis(string Name, IReadOnlyList<AxisValue> Values);

/// <summary>Cells matching every entry (axis → any of these values) are left out of the matrix.</summary>
public sealed record Exclusion(IReadOnlyDictionary<string, IReadOnlyList<string>> Match, SourceLocation At);

/// <summary>Settings for the <c>agents</c> target: the in-process coordinator it starts and how long it waits.</summary>
public sealed record AgentsOptions(string Listen, string? TokenFile, TimeSpan LeaseTimeout, TimeSpan Timeout);

/// <summary>
/// A validated experiment, immutable: every name checked against the strategy catalog, every size parsed, every
/// prompt read. <see cref="Matrix.Expand"/> turns it into run cells.
/// </summary>
public sealed record Experiment
{
    public required string Name { get; init; }

    public string? Description { get; init; }

    /// <summary>The YAML file as given, and the SHA-256 of its bytes (recorded in the manifest).</summary>
    public required string SourceFile { get; init; }

    public required string SourceSha256 { get; init; }

    public required ModelRef Model { get; init; }

    /// <summary><c>local</c>, <c>sim:PROFILE</c> or <c>agents</c>.</summary>
    public required string Target { get; init; }

    public required IReadOnlyList<string> Prompts { get; init; }

    public int Generate { get; init; } = 32;

    public int Warmup { get; init; }

    public int Repetitions { get; init; } = 3;

    public long Seed { get; init; } = 42;

    public int Threads { get; init; }

    public double Temperature { get; init; }

    public int TopK { get; init; }

    public double TopP { get; init; } = 1.0;

    public bool RecordTrace { get; init; }

    public bool MeasureQuality { get; init; }

    public string? Trace { get; init; }

    public string? TraceFormat { get; init; }

    public AgentsOptions? Agents { get; init; }

    /// <summary>Every axis, in <see cref="Axes.All"/> order, each with at least one value.</summary>
    public required IReadOnlyList<Axis> Axes { get; init; }

    public IReadOnlyList<Exclusion> Exclusions { get; init; } = [];

    /// <summary>The cell comparisons are made against: axis → value text (axes not named must have a single value).</summary>
    public IReadOnlyDictionary<string, string>? Baseline { get; init; }

    public SourceLocation? BaselineAt { get; init; }
}
