using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Runs;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab quality</c>: the quality cost of one configuration (KL, top-1 agreement, perplexity) on a text.</summary>
public sealed class QualityCommand : ICliCommand
{
    public string Name => "quality";

    public string Summary => "quality cost of a lossy routing/precision strategy vs the exact model: KL, top-1 agreement, perplexity";

    public string Usage =>
        "usage: moelab quality --model F.gguf [--routing top-k-reduce:k=2] [--precision uniform-bits:bits=4] [--text FILE] [--tokens 256]\n" +
        "                      [--budget 512MiB] [--io direct|buffered] [--cache lru] [--prefetch none] [--io-scheduler fifo] [--threads N] [--json]\n" +
        "                      [--profile-trace F.mltrace]   (a routing trace of this model for static-hot, layered-lru, per-expert-bits)\n" +
        "The text (default: a built-in paragraph) is teacher-forced through the exact model (native precision, unchanged\n" +
        "routing) and through the model with the given strategies; KL(exact ‖ strategy) and top-1 agreement are per\n" +
        "next-token prediction, perplexity is of the text. Precision policies need --budget and side files (moelab model requant).";

    public int Run(CliArgs args)
    {
        string model = args.Required("model");
        string? textFile = args.Option("text");
        // The engine options are parsed where generate, trace record and calibrate parse them, so defaults cannot drift.
        var engine = GenerateCommand.Settings(args);
        var cell = new RunCell
        {
            CellId = "quality",
            Experiment = "quality",
            Model = model,
            Prompts = [],
            BudgetBytes = engine.BudgetBytes,
            IoMode = engine.IoMode,
            Cache = engine.Cache,
            Prefetch = engine.Prefetch,
            Routing = engine.Routing,
            Precision = engine.Precision,
            Io = engine.Io,
            Threads = engine.Threads,
            MeasureQuality = true,
            QualityText = textFile is null ? null : File.ReadAllText(textFile),
            QualityTokens = args.Int("tokens", 256),
        };
        bool json = args.Flag("json");
        args.EnsureAllUsed();
        args.EnsureNoPositional();
        if (cell.QualityTokens < 2) throw new CliUsageException("--tokens must be at least 2 (one next-token prediction)");

        var q = EngineCellRunner.MeasureQuality(cell, model, CancellationToken.None, engine.Profile);
        if (json)
        {
            var o = new JsonObject
            {
                ["model"] = model,
                ["routing"] = cell.Routing,
                ["precision"] = cell.Precision,
                ["text"] = textFile,
                ["positions"] = q.Positions,
                ["mean_kl"] = q.MeanKl,
                ["max_kl"] = q.MaxKl,
                ["top1_agreement"] = q.Top1Agreement,
                ["perplexity"] = q.Perplexity,
                ["exact_perplexity"] = q.ExactPerplexity,
                ["identical_logit_positions"] = q.IdenticalPositions,
            };
            Console.WriteLine(o.ToJsonString(new JsonSerializerOptions { WriteIndented = false }));
            return 0;
        }

        var c = CultureInfo.InvariantCulture;
        Console.WriteLine($"routing {cell.Routing}, precision {cell.Precision} on {textFile ?? "the built-in reference text"} ({q.Positions} next-token predictions):");
        Console.WriteLine(string.Create(c, $"  mean KL(exact ‖ this) {q.MeanKl:G4} nats (max {q.MaxKl:G4}), top-1 agreement {q.Top1Agreement:P1}"));
        Console.WriteLine(string.Create(c, $"  perplexity {q.Perplexity:F3} (exact model {q.ExactPerplexity:F3}); logits bit-identical at {q.IdenticalPositions} of {q.Positions} positions"));
        return 0;
    }
}
