using MoeLab.Harness.Experiments;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab validate F.yaml</c>: checks an experiment file and prints every error with its position.</summary>
public sealed class ValidateCommand : ICliCommand
{
    public string Name => "validate";

    public string Summary => "check an experiment file without running it";

    public string Usage => "usage: moelab validate EXPERIMENT.yaml [EXPERIMENT.yaml …]";

    public int Run(CliArgs args)
    {
        args.EnsureAllUsed();
        if (args.Positional.Count == 0) throw new CliUsageException("give at least one experiment file");
        int failed = 0;
        foreach (string file in args.Positional)
        {
            try
            {
                var experiment = ExperimentReader.Load(file);
                int cells = Matrix.Combinations(experiment).Count();
                Console.WriteLine($"{file}: ok — experiment '{experiment.Name}', {cells} cell{(cells == 1 ? "" : "s")}, target {experiment.Target}");
            }
            catch (ExperimentException e)
            {
                failed++;
                foreach (var error in e.Errors) Console.Error.WriteLine("error: " + error);
            }
            catch (FileNotFoundException e)
            {
                failed++;
                Console.Error.WriteLine("error: " + e.Message);
            }
        }

        return failed == 0 ? 0 : 1;
    }
}
