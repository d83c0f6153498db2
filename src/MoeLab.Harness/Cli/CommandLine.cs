namespace MoeLab.Harness.Cli;

/// <summary>The <c>moelab</c> entry point: finds the command named by the leading words and runs it.</summary>
public static class CommandLine
{
    /// <summary>Every verb, in the order <c>moelab help</c> lists them. Adding a verb adds one line here.</summary>
    public static IReadOnlyList<ICliCommand> Commands { get; } =
    [
        new ModelSynthCommand(),
        new ModelInfoCommand(),
        new ModelRequantCommand(),
        new LogitsCommand(),
        new GenerateCommand(),
        new BenchCommand(),
        new ServeCommand(),
        new AgentCommand(),
        new ValidateCommand(),
        new RunCommand(),
        new ReportCommand(),
        new CompareCommand(),
        new SimCommand(),
        new TraceCommand(),
        new StrategiesCommand(),
        new CalibrateCommand(),
        new QualityCommand(),
    ];

    public static int Run(string[] args)
    {
        if (args.Length == 0 || args[0] is "help" or "--help" or "-h")
        {
            return Help(args.Skip(1).ToArray());
        }

        // Longest match first, so "model synth" wins over a hypothetical "model".
        ICliCommand? command = null;
        int words = 0;
        foreach (var c in Commands)
        {
            string[] parts = c.Name.Split(' ');
            if (parts.Length <= args.Length && parts.Length > words && parts.SequenceEqual(args.Take(parts.Length), StringComparer.Ordinal))
            {
                command = c;
                words = parts.Length;
            }
        }

        if (command is null)
        {
            Console.Error.WriteLine($"moelab: unknown command '{string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')))}'. Run 'moelab help'.");
            return 2;
        }

        var rest = new CliArgs(args.Skip(words));
        if (rest.Flag("help"))
        {
            Console.WriteLine(command.Usage);
            return 0;
        }

        try
        {
            return command.Run(rest);
        }
        catch (CliUsageException e)
        {
            Console.Error.WriteLine($"moelab {command.Name}: {e.Message}");
            Console.Error.WriteLine(command.Usage);
            return 2;
        }
        catch (Exception e) when (e is MoeLab.Strategies.StrategyException or IOException or InvalidDataException or UnauthorizedAccessException or FormatException or ArgumentException or InvalidOperationException or NotSupportedException)
        {
            // Errors at boundaries carry their own location and fix; a stack trace would only bury it.
            Console.Error.WriteLine($"moelab {command.Name}: {e.Message}");
            return 1;
        }
    }

    private static int Help(string[] topic)
    {
        if (topic.Length > 0)
        {
            string name = string.Join(' ', topic);
            var c = Commands.FirstOrDefault(c => c.Name == name);
            if (c is null)
            {
                Console.Error.WriteLine($"moelab: no command '{name}'");
                return 2;
            }

            Console.WriteLine(c.Usage);
            return 0;
        }

        Console.WriteLine("moelab — expert-offloading research harness for Mixture-of-Experts models\n");
        Console.WriteLine("commands:");
        foreach (var c in Commands) Console.WriteLine($"  {c.Name,-18} {c.Summary}");
        Console.WriteLine("\n'moelab help COMMAND' or 'moelab COMMAND --help' shows a command's options.");
        return 0;
    }
}
