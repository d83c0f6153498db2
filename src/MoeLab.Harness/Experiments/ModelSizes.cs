using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.Harness.Experiments;

/// <summary>How many bytes a model's routed experts take: what fractional budgets (<c>25%</c>) are fractions of.</summary>
public static class ModelSizes
{
    /// <summary>The expert type a synthesized model gets when the experiment names none.</summary>
    public const GgmlType DefaultSynthQuant = GgmlType.Q4_0;

    /// <summary>Routed-expert bytes, or null when the model cannot be inspected from here (an agent's file).</summary>
    public static long? TotalExpertBytes(ModelRef model)
    {
        if (model.Preset is { } name)
        {
            var preset = ModelPreset.Find(name) ?? throw new ArgumentException($"model preset '{name}' is unknown; known: {string.Join(", ", ModelPreset.All.Select(p => p.Name))}");
            var type = model.Quant is { } q ? Enum.Parse<GgmlType>(q, ignoreCase: true) : DefaultSynthQuant;
            return preset.Shape(type, model.Layers).TotalExpertBytes;
        }

        if (model.Path is { } path && File.Exists(path))
        {
            // Routed experts are the stacked ffn_{gate,up,down}_exps tensors (llama.cpp naming).
            var file = GgufFile.Open(path);
            return file.Tensors.Where(t => t.Name.Contains("_exps.", StringComparison.Ordinal)).Sum(t => t.ByteSize);
        }

        return null;
    }
}
