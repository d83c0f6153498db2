using System.Globalization;
using System.Text;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;

namespace MoeLab.Harness.Cli;

/// <summary>
/// <c>moelab logits</c>: every position's logits for a token sequence, in a binary layout other engines' outputs can
/// be compared against: int32 'LGTS', int32 n_tokens, int32 n_vocab, int32 tokens[n], float32 logits[n][n_vocab].
/// </summary>
public sealed class LogitsCommand : ICliCommand
{
    public string Name => "logits";

    public string Summary => "write every position's logits (and router choices) for a token sequence";

    public string Usage =>
        "usage: moelab logits --model F.gguf --tokens 1,2,3 --out L.bin [--csv] [--router-out R.csv] [--threads N]\n" +
        "binary layout (little-endian): int32 magic 'LGTS', int32 n_tokens, int32 n_vocab, int32 tokens[n_tokens],\n" +
        "float32 logits[n_tokens][n_vocab]. --csv writes position,token,logit_0..logit_{V-1} instead.\n" +
        "--router-out writes position,layer,rank,expert,weight for every routed expert.";

    public int Run(CliArgs args)
    {
        string modelPath = args.Required("model");
        string tokenText = args.Required("tokens");
        string output = args.Required("out");
        bool csv = args.Flag("csv");
        string? routerOut = args.Option("router-out");
        int threads = args.Int("threads", 0);
        args.EnsureAllUsed();

        int[] tokens;
        try
        {
            tokens = tokenText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray();
        }
        catch (FormatException)
        {
            throw new CliUsageException($"--tokens must be comma-separated integers, got '{tokenText}'");
        }

        if (tokens.Length == 0)
        {
            throw new CliUsageException("--tokens is empty");
        }

        var router = routerOut is null ? null : new RouterRecorder();
        using var model = MoeModel.Load(modelPath, new ModelOptions { Threads = threads, MaxContext = Math.Max(tokens.Length, 16), Observer = router });
        int vocab = model.Config.Vocab;
        var logits = new float[tokens.Length][];
        for (int i = 0; i < tokens.Length; i++)
        {
            logits[i] = model.Forward(tokens[i]).ToArray();
        }

        if (csv)
        {
            using var w = new StreamWriter(output, false, new UTF8Encoding(false));
            w.Write("position,token");
            for (int v = 0; v < vocab; v++)
            {
                w.Write(",logit_" + v.ToString(CultureInfo.InvariantCulture));
            }

            w.WriteLine();
            for (int i = 0; i < tokens.Length; i++)
            {
                w.Write(i.ToString(CultureInfo.InvariantCulture) + "," + tokens[i].ToString(CultureInfo.InvariantCulture));
                foreach (float f in logits[i])
                {
                    w.Write("," + f.ToString("R", CultureInfo.InvariantCulture));
                }

                w.WriteLine();
            }
        }
        else
        {
            using var w = new BinaryWriter(File.Create(output));
            w.Write("LGTS"u8);
            w.Write(tokens.Length);
            w.Write(vocab);
            foreach (int t in tokens)
            {
                w.Write(t);
            }

            foreach (var row in logits)
            {
                foreach (float f in row)
                {
                    w.Write(f);
                }
            }
        }

        if (router is not null)
        {
            File.WriteAllText(routerOut!, router.Csv());
        }

        Console.Error.WriteLine($"wrote {tokens.Length} × {vocab} logits to {output}");
        return 0;
    }

    private sealed class RouterRecorder : IRoutingObserver
    {
        private readonly StringBuilder _csv = new("position,layer,rank,expert,weight\n");

        public void Observe(in RoutingObservation o)
        {
            for (int j = 0; j < o.Experts.Length; j++)
            {
                _csv.Append(CultureInfo.InvariantCulture, $"{o.Token},{o.Layer},{j},{o.Experts[j]},{o.Weights[j].ToString("R", CultureInfo.InvariantCulture)}\n");
            }
        }

        public string Csv() => _csv.ToString();
    }
}
