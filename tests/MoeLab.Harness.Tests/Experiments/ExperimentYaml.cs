using System.Text;
using MoeLab.Harness.Experiments;

namespace MoeLab.Harness.Tests.Experiments;

/// <summary>Parses experiment YAML text in a temporary directory (prompt and trace files resolve next to it).</summary>
internal static class ExperimentYaml
{
    public static Experiment Parse(string yaml, string file = "exp.yaml") =>
        ExperimentReader.Parse(file, Encoding.UTF8.GetBytes(yaml), Path.GetTempPath());

    public static IReadOnlyList<ExperimentError> Errors(string yaml, string file = "exp.yaml")
    {
        try
        {
            Parse(yaml, file);
        }
        catch (ExperimentException e)
        {
            return e.Errors;
        }

        return [];
    }

    public const string Minimal = """
        model: { synth: { preset: tiny-qwen3moe } }
        target: local
        prompts: ["Once upon a time"]
        """;
}
