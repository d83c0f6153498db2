using MoeLab.Engine.Experts;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab model requant</c>: writes the lower-precision expert copies precision policies choose from.</summary>
public sealed class ModelRequantCommand : ICliCommand
{
    public string Name => "model requant";

    public string Summary => "write lower-precision copies of a model's routed experts (side files) for precision policies";

    public string Usage =>
        "usage: moelab model requant --model F.gguf --type Q4_0 [--type Q2_K ...]\n" +
        "Each type is written to F.experts-<type>.gguf next to the model: every routed expert dequantized to F32 and\n" +
        "quantized again, one expert at a time. Types: Q8_0, Q6_K, Q4_K, Q4_0, Q3_K, Q2_K, F16, BF16 (K-quants need rows\n" +
        "that are multiples of 256). Precision policies (uniform-bits, low-bit-on-miss, per-expert-bits) find them by name.";

    public int Run(CliArgs args)
    {
        string model = args.Required("model");
        var types = args.Options("type").Select(ModelSynthCommand.ParseQuant).Distinct().ToList();
        args.EnsureAllUsed();
        args.EnsureNoPositional();
        if (types.Count == 0) throw new CliUsageException("--type is required (one or more, e.g. --type Q4_0 --type Q2_K)");
        if (!File.Exists(model)) throw new FileNotFoundException($"{model}: no such model file");

        foreach (var type in types)
        {
            Console.Error.WriteLine($"requantizing the routed experts of {model} to {type}");
            int last = -1;
            string path = ExpertRequantizer.Write(model, type, progress: new Progress(p =>
            {
                int percent = (int)(p * 100);
                if (percent / 5 != last / 5)
                {
                    last = percent;
                    Console.Error.Write($"\r  {percent,3}%");
                }
            }));
            Console.Error.WriteLine();
            Console.WriteLine($"wrote {path} ({ModelSynthCommand.Bytes(new FileInfo(path).Length)})");
        }

        return 0;
    }

    /// <summary>Synchronous progress, printed in order.</summary>
    private sealed class Progress(Action<double> report) : IProgress<double>
    {
        public void Report(double value) => report(value);
    }
}
