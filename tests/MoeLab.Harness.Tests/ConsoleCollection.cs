namespace MoeLab.Harness.Tests;

/// <summary>
/// Tests that swap Console.Out or Console.Error (process-wide) to read a command's output run alone: in parallel, one
/// test's restore can put back another's writer, or another test's command can print into the capture.
/// </summary>
[CollectionDefinition(nameof(ConsoleCollection), DisableParallelization = true)]
public sealed class ConsoleCollection;
