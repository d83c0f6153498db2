using System.Globalization;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab model info</c>: architecture, sizes, per-expert bytes, what the engine will and will not run.</summary>
public sealed class ModelInfoCommand : ICliCommand
{
    public string Name => "model info";

    public string Summary => "print a GGUF model's architecture, sizes and per-expert bytes";

    public string Usage => "usage: moelab model info F.gguf [--metadata]";

    public int Run(CliArgs args)
    {
        if (args.Positional.Count != 1)
        {
            throw new CliUsageException("expected one model file");
        }

        bool metadata = args.Flag("metadata");
        args.EnsureAllUsed();
        var f = GgufFile.Open(args.Positional[0]);
        var c = ModelConfig.FromGguf(f);
        var layout = ExpertTensors.Layout(f, c);
        long expertBytes = layout.TotalBytes;
        long resident = f.Tensors.Where(t => !ExpertTensors.IsRoutedExpert(t)).Sum(t => t.ByteSize);
        var types = f.Tensors.GroupBy(t => t.Type).Select(g => $"{g.Key}×{g.Count()}");
        static string I(long v) => v.ToString(CultureInfo.InvariantCulture);

        Console.WriteLine($"file            {f.Path} (GGUF v{f.Version}, {ModelSynthCommand.Bytes(f.FileLength)})");
        Console.WriteLine($"name            {f.GetStringOrNull("general.name") ?? "(none)"}");
        Console.WriteLine($"architecture    {c.Architecture}");
        Console.WriteLine($"layers          {c.Layers} ({layout.Layers} MoE)");
        Console.WriteLine($"hidden          {c.Hidden}; heads {c.Heads} (kv {c.KvHeads}), head dim {c.KeyLength}; context {c.ContextLength}");
        Console.WriteLine($"experts         {c.Experts} per layer, {c.ExpertsUsed} used per token, FF {c.ExpertFeedForward}" +
                          (c.SharedFeedForward > 0 ? $", shared expert FF {c.SharedFeedForward}" : ""));
        Console.WriteLine($"vocabulary      {c.Vocab} ({f.GetStringOrNull("tokenizer.ggml.model") ?? "no"} tokenizer, pre {f.GetStringOrNull("tokenizer.ggml.pre") ?? "-"})");
        Console.WriteLine($"tensor types    {string.Join(", ", types)}");
        Console.WriteLine($"per expert      {ModelSynthCommand.Bytes(layout.MaxExpertBytes)} ({I(layout.MaxExpertBytes)} bytes: gate+up+down)");
        Console.WriteLine($"routed experts  {ModelSynthCommand.Bytes(expertBytes)} ({I(expertBytes)} bytes, {I((long)layout.Layers * c.Experts)} experts) — streamed");
        Console.WriteLine($"resident        {ModelSynthCommand.Bytes(resident)} (embeddings, attention, norms, routers{(c.SharedFeedForward > 0 ? ", shared experts" : "")})");
        if (SynthOptions.LayerUpdateScaleOf(f) is { } scale)
        {
            // Every result on such a file should say it ran a model with damped block updates.
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"synthesized     layer update scale {scale:G4} (blocks' output projections scaled; {SynthOptions.LayerUpdateScaleKey})"));
        }

        var skipped = f.Tensors.Where(t => t.Name.Contains(".nextn.", StringComparison.Ordinal) || t.Name.StartsWith("v.", StringComparison.Ordinal) || t.Name.StartsWith("mm.", StringComparison.Ordinal)).ToList();
        if (skipped.Count > 0)
        {
            Console.WriteLine($"not run         {skipped.Count} tensors (multi-token-prediction heads / vision encoder) are ignored");
        }

        if (metadata)
        {
            foreach (var (key, value) in f.MetadataInOrder)
            {
                Console.WriteLine($"  {key} = {value}");
            }
        }

        return 0;
    }
}
