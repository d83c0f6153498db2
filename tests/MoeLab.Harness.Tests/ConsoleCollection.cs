using MoeLab.Harness.Cli;

namespace MoeLab.Harness.Tests;

/// <summary>
/// Tests that swap Console.Out or Console.Error (process-wide) to read a command's output run alone: in parallel, one
/// test's restore can put back another's writer, or another test's command can print into the capture.
/// </summary>
[CollectionDefinition(nameof(ConsoleCollection), DisableParallelization = true)]
public sealed class ConsoleCollection;

/// <summary>Runs a <c>moelab</c> command line in this process with stdout and stderr captured (tests in <see cref="ConsoleCollection"/> only).</summary>
internal static class ConsoleCapture
{
    public static (int Code, string Output, string Error) Run(params string[] args)
    {
        var (stdout, stderr) = (Console.Out, Console.Error);
        var (output, error) = (new StringWriter(), new StringWriter());
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            return (CommandLine.Run(args), output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(stdout);
            Console.SetError(stderr);
        }
    }
}
