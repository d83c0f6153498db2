namespace MoeLab.Harness.Cli;

/// <summary>One <c>moelab</c> verb (a multi-word verb such as "model synth" is one command).</summary>
public interface ICliCommand
{
    /// <summary>The words that select it, e.g. "generate" or "model synth".</summary>
    string Name { get; }

    string Summary { get; }

    /// <summary>Usage lines shown by <c>moelab help NAME</c> and on a usage error.</summary>
    string Usage { get; }

    /// <summary>Runs it; returns the process exit code. Throw <see cref="CliUsageException"/> for bad arguments.</summary>
    int Run(CliArgs args);
}

/// <summary>Bad command-line input: printed with the command's usage, exit code 2, never a stack trace.</summary>
public sealed class CliUsageException(string message) : Exception(message);
