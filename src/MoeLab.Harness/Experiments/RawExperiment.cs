namespace MoeLab.Harness.Experiments;

/// <summary>A strategy as written: a name plus raw parameters, each with its position.</summary>
public sealed record RawStrategy(Located<string> Name, IReadOnlyList<(Located<string> Key, Located<string> Value)> Parameters);

/// <summary>One value of one axis as written (a strategy, or a plain scalar such as a budget).</summary>
public sealed record RawAxisValue(SourceLocation At, RawStrategy? Strategy, Located<string>? Scalar);

public sealed record RawPrompts(IReadOnlyList<Located<string>> Inline, Located<string>? File, Located<string>? Dataset, Located<int>? Lines, Located<int>? Skip);

public sealed record RawModel(SourceLocation At, Located<string>? Path, Located<string>? Preset, Located<int>? Layers, Located<string>? Quant);

/// <summary>
/// The experiment file as read: structure and scalar types checked, positions kept, names not yet resolved.
/// <see cref="ExperimentValidator"/> turns it into an immutable <see cref="Experiment"/>.
/// </summary>
public sealed class RawExperiment
{
    public required string File { get; init; }

    public required string Sha256 { get; init; }

    public SourceLocation At { get; set; }

    /// <summary>Top-level keys present in the file (a key present but unreadable is already an error; not also "missing").</summary>
    public HashSet<string> Keys { get; } = new(StringComparer.Ordinal);

    public Located<string>? Name { get; set; }

    public Located<string>? Description { get; set; }

    public RawModel? Model { get; set; }

    public Located<string>? Target { get; set; }

    public RawPrompts? Prompts { get; set; }

    public Located<int>? Generate { get; set; }

    public Located<int>? Warmup { get; set; }

    public Located<int>? Repetitions { get; set; }

    public Located<long>? Seed { get; set; }

    public Located<int>? Threads { get; set; }

    public Located<double>? Temperature { get; set; }

    public Located<int>? TopK { get; set; }

    public Located<double>? TopP { get; set; }

    public Located<bool>? RecordTrace { get; set; }

    public Located<bool>? MeasureQuality { get; set; }

    public Located<string>? TracePath { get; set; }

    public Located<string>? TraceFormat { get; set; }

    public Located<string>? AgentsListen { get; set; }

    public Located<string>? AgentsTokenFile { get; set; }

    public Located<double>? AgentsLeaseSeconds { get; set; }

    public Located<double>? AgentsTimeoutMinutes { get; set; }

    public Dictionary<string, List<RawAxisValue>> Matrix { get; } = new(StringComparer.Ordinal);

    public List<(SourceLocation At, List<(Located<string> Axis, List<Located<string>> Values)> Match)> Exclude { get; } = [];

    public List<(Located<string> Axis, Located<string> Value)>? Baseline { get; set; }

    public SourceLocation? BaselineAt { get; set; }
}
