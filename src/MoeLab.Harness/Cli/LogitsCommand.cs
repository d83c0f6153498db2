using System.Globalization;
using System.Text;
using MoeLab.Engine.Model;
using MoeLab.Engine.Policies;

namespace MoeLab.Harness.Cli;

/// <summary>
/// <c>moelab logits</c>: every position's logits for a token sequence, in a binary layout other engines' outputs can
/// be compared against: int32 'LGTS', int32 n_tokens, int32 n_vocab, int32 tokens[n], float32 logits[n][n_vocab].
/// The sequence is evaluated in prompt chunks (<see cref="MoeModel.ForwardPrompt(ReadOnlySpan{int}, Span{float})"/>),
/// bit-identical to evaluating it token by token.
/// </summary>
public sealed class LogitsCommand : ICliCommand
{
    public string Name => "logits";

    public string Summary => "write every position's logits (and router choices) for a token sequence";

    public string Usage =>
        "usage: moelab logits --model F.gguf --tokens 1,2,3 --out L.bin [--csv] [--router-out R.csv] [--threads N]\n" +
        "binary layout (little-endian): int32 magic 'LGTS', int32 n_tokens, int32 n_vocab, int32 tokens[n_tokens],\n" +
        "float32 logits[n_tokens][n_vocab]. --csv writes position,token,logit_0..logit_{V-1} instead.\n" +
        "The sequence is evaluated in batches of " + MoeModel.PromptChunk + " tokens (logits bit-identical to token by token).\n" +
        "--router-out writes position,layer,rank,expert,weight for every routed expert.\n" +
        "--compare OTHER.bin prints max |Δlogit|, mean |Δlogit| and top-1 agreement against another engine's LGTS file;\n" +
        "--router-compare OTHER.csv (position,layer,rank,expert) prints how many (position, layer) chose the same experts.";

    public int Run(CliArgs args)
    {
        string modelPath = args.Required("model");
        string tokenText = args.Required("tokens");
        string output = args.Required("out");
        bool csv = args.Flag("csv");
        string? routerOut = args.Option("router-out");
        int threads = args.Int("threads", 0);
        string? compare = args.Option("compare");
        string? routerCompare = args.Option("router-compare");
        args.EnsureAllUsed();
        args.EnsureNoPositional();

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
        var logits = new float[(long)tokens.Length * vocab]; // row i: position i
        model.ForwardPrompt(tokens, logits);

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
                foreach (float f in logits.AsSpan(i * vocab, vocab))
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

            foreach (float f in logits)
            {
                w.Write(f);
            }
        }

        if (router is not null)
        {
            File.WriteAllText(routerOut!, router.Csv());
        }

        Console.Error.WriteLine($"wrote {tokens.Length} × {vocab} logits to {output}");
        if (compare is not null)
        {
            Console.WriteLine(CompareLogits(tokens, logits, vocab, compare));
        }

        if (routerCompare is not null)
        {
            Console.WriteLine(CompareRouters(router?.Choices ?? throw new CliUsageException("--router-compare needs --router-out"), routerCompare));
        }

        return 0;
    }

    /// <summary>Reads another engine's LGTS file and reports how far its logits are from ours (row-major, <paramref name="vocab"/> per position).</summary>
    public static string CompareLogits(int[] tokens, float[] ours, int vocab, string otherPath)
    {
        using var r = new BinaryReader(File.OpenRead(otherPath));
        if (!r.ReadBytes(4).AsSpan().SequenceEqual("LGTS"u8))
        {
            throw new InvalidDataException($"{otherPath}: not an LGTS logits file (bad magic)");
        }

        int n = r.ReadInt32(), theirVocab = r.ReadInt32();
        if (n != tokens.Length || theirVocab != vocab)
        {
            throw new InvalidDataException($"{otherPath}: holds {n} × {theirVocab} logits, ours are {tokens.Length} × {vocab}");
        }

        for (int i = 0; i < n; i++)
        {
            int t = r.ReadInt32();
            if (t != tokens[i])
            {
                throw new InvalidDataException($"{otherPath}: token {i} is {t}, ours is {tokens[i]}");
            }
        }

        double max = 0, sum = 0, scale = 0;
        int top1 = 0;
        for (int i = 0; i < n; i++)
        {
            var row = ours.AsSpan(i * vocab, vocab);
            int bestOurs = 0, bestOther = 0;
            float bestOtherValue = float.NegativeInfinity;
            for (int v = 0; v < vocab; v++)
            {
                float o = r.ReadSingle();
                double d = Math.Abs(o - row[v]);
                max = Math.Max(max, d);
                sum += d;
                scale = Math.Max(scale, Math.Abs(o));
                if (row[v] > row[bestOurs])
                {
                    bestOurs = v;
                }

                if (o > bestOtherValue)
                {
                    bestOtherValue = o;
                    bestOther = v;
                }
            }

            top1 += bestOurs == bestOther ? 1 : 0;
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"logits vs {Path.GetFileName(otherPath)}: max |Δ| {max:G4}, mean |Δ| {sum / ((double)n * vocab):G4} (max |logit| {scale:G4}), top-1 agreement {top1}/{n}");
    }

    /// <summary>Compares expert choices per (position, layer) as sets (engines may order equal-weight ties differently).</summary>
    public static string CompareRouters(Dictionary<(int Position, int Layer), SortedSet<int>> ours, string otherCsv)
    {
        var other = new Dictionary<(int, int), SortedSet<int>>();
        foreach (string line in File.ReadLines(otherCsv).Skip(1))
        {
            var f = line.Split(',');
            var key = (int.Parse(f[0], CultureInfo.InvariantCulture), int.Parse(f[1], CultureInfo.InvariantCulture));
            if (!other.TryGetValue(key, out var set))
            {
                other[key] = set = [];
            }

            set.Add(int.Parse(f[3], CultureInfo.InvariantCulture));
        }

        int same = ours.Count(kv => other.TryGetValue(kv.Key, out var s) && s.SetEquals(kv.Value));
        var firstDiff = ours.Keys.Where(k => !other.TryGetValue(k, out var s) || !s.SetEquals(ours[k])).OrderBy(k => k).Take(1).ToList();
        return $"router choices vs {Path.GetFileName(otherCsv)}: {same}/{ours.Count} (position, layer) pairs identical" +
               (firstDiff.Count > 0 ? $"; first difference at position {firstDiff[0].Position}, layer {firstDiff[0].Layer}" : "");
    }

    /// <summary>Keeps each (position, layer) decision, so a batched prompt's layer-major arrival order does not matter.</summary>
    private sealed class RouterRecorder : IRoutingObserver
    {
        private readonly SortedDictionary<(int Position, int Layer), (int[] Experts, float[] Weights)> _seen = [];

        public bool AcceptsLayerMajorOrder => true;

        public Dictionary<(int Position, int Layer), SortedSet<int>> Choices { get; } = [];

        public void Observe(in RoutingObservation o)
        {
            Choices[(o.Token, o.Layer)] = [.. o.Experts.ToArray()];
            _seen[(o.Token, o.Layer)] = (o.Experts.ToArray(), o.Weights.ToArray());
        }

        /// <summary>position,layer,rank,expert,weight rows ordered by position, then layer, then rank.</summary>
        public string Csv()
        {
            var csv = new StringBuilder("position,layer,rank,expert,weight\n");
            foreach (var ((position, layer), (experts, weights)) in _seen)
            {
                for (int j = 0; j < experts.Length; j++)
                {
                    csv.Append(CultureInfo.InvariantCulture, $"{position},{layer},{j},{experts[j]},{weights[j].ToString("R", CultureInfo.InvariantCulture)}\n");
                }
            }

            return csv.ToString();
        }
    }
}
