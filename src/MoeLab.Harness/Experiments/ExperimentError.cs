namespace MoeLab.Harness.Experiments;

/// <summary>Where in an experiment file something was written (1-based, as editors count).</summary>
public readonly record struct SourceLocation(string File, int Line, int Column)
{
    public override string ToString() => $"{File}:{Line}:{Column}";
}

/// <summary>One problem in an experiment file: where, what is wrong, and (when known) what was expected and the nearest valid name.</summary>
public sealed record ExperimentError(SourceLocation At, string Message, string? Expected = null, string? Found = null, string? Suggestion = null)
{
    public override string ToString()
    {
        var text = $"{At}: {Message}";
        if (Expected is not null) text += $"; expected {Expected}";
        if (Found is not null) text += $", found {Found}";
        if (Suggestion is not null) text += $" (did you mean '{Suggestion}'?)";
        return text;
    }
}

/// <summary>An experiment file that cannot run; carries every error found, each with its position.</summary>
public sealed class ExperimentException(IReadOnlyList<ExperimentError> errors)
    : Exception(string.Join(Environment.NewLine, errors.Select(e => e.ToString())))
{
    public IReadOnlyList<ExperimentError> Errors { get; } = errors;
}
