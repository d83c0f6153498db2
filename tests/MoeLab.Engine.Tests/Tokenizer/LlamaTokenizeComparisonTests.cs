using System.Diagnostics;
using System.Text;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Tokenizer;
using Tok = MoeLab.Engine.Tokenizer.Tokenizer;

namespace MoeLab.Engine.Tests.Tokenizer;

/// <summary>
/// Random text encoded by MoeLab and by llama.cpp's own llama-tokenize must give the same ids. Besides llama.cpp's
/// vocab files this covers the pre-tokenizers whose vocab files are not available here (qwen2, qwen35, llama-bpe) by
/// relabelling the GPT-2 vocabulary, and the byte-level vocabulary moelab synthesizes.
/// </summary>
[Trait("Category", "Slow")]
public class LlamaTokenizeComparisonTests
{
    private const int StringsPerVocab = 150;

    public static TheoryData<string> Vocabs()
    {
        var data = new TheoryData<string>();
        foreach (var path in LlamaCppVocab.SupportedFiles())
        {
            data.Add(Path.GetFileName(path));
        }
        foreach (var pre in new[] { "qwen2", "qwen35", "llama-bpe" })
        {
            data.Add("gpt-2-as-" + pre);
        }
        data.Add("moelab-byte-level");
        return data;
    }

    [LlamaTokenizeTheory]
    [MemberData(nameof(Vocabs))]
    public void MatchesLlamaTokenizeOnRandomText(string vocab)
    {
        string work = Directory.CreateTempSubdirectory("moelab-tok-").FullName;
        try
        {
            string path = Materialize(vocab, work);
            var tok = GgufTokenizer.Load(GgufFile.Open(path));
            // special tokens of this vocabulary appear in the text now and then, so their matching is compared too
            var specials = Enumerable.Range(0, tok.VocabSize)
                .Where(i => tok.GetTokenType(i) is TokenType.Control or TokenType.UserDefined)
                .Select(tok.TokenText).Where(t => t.Length > 1).Take(30).ToArray();
            var rng = new Random(vocab.Aggregate(17, (h, c) => h * 31 + c) & 0x7fffffff); // stable per vocab across runs
            string prompt = Path.Combine(work, "prompt.txt");
            var failures = new List<string>();
            for (int i = 0; i < StringsPerVocab; i++)
            {
                string text = TestText.Sanitized(TestText.Random(rng, 25, specials));
                bool parseSpecial = i % 2 == 0;
                File.WriteAllBytes(prompt, Encoding.UTF8.GetBytes(text));
                int[] expected = RunLlamaTokenize(path, prompt, parseSpecial);
                int[] actual = tok.Encode(text, addSpecial: true, parseSpecial: parseSpecial);
                if (!actual.SequenceEqual(expected))
                {
                    failures.Add($"'{LlamaCppVocabTests.Escape(text)}' (parse_special={parseSpecial}): llama.cpp [{string.Join(' ', expected)}] MoeLab [{string.Join(' ', actual)}]");
                }
            }
            Assert.True(failures.Count == 0, $"{vocab}: {failures.Count}/{StringsPerVocab} differ:\n" + string.Join('\n', failures.Take(8)));
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static string Materialize(string vocab, string work)
    {
        string dir = LlamaCppVocab.Dir!;
        if (vocab.EndsWith(".gguf", StringComparison.Ordinal))
        {
            return Path.Combine(dir, vocab);
        }
        var gpt2 = GgufFile.Open(Path.Combine(dir, "ggml-vocab-gpt-2.gguf"));
        var writer = new GgufWriter();
        string outPath = Path.Combine(work, vocab + ".gguf");
        if (vocab.StartsWith("gpt-2-as-", StringComparison.Ordinal))
        {
            foreach (var kv in gpt2.MetadataInOrder)
            {
                writer.Set(kv.Key, kv.Value);
            }
            writer.Set("tokenizer.ggml.pre", vocab["gpt-2-as-".Length..]);
        }
        else
        {
            foreach (var kv in gpt2.MetadataInOrder.Where(kv => !kv.Key.StartsWith("tokenizer.", StringComparison.Ordinal)))
            {
                writer.Set(kv.Key, kv.Value);
            }
            var (tokens, types, merges) = ByteLevelVocabulary.Create(1000);
            writer.Set("tokenizer.ggml.model", "gpt2")
                .Set("tokenizer.ggml.pre", "qwen2")
                .Set("tokenizer.ggml.tokens", GgufValue.Of(tokens))
                .Set("tokenizer.ggml.token_type", GgufValue.Of(types))
                .Set("tokenizer.ggml.merges", GgufValue.Of(merges))
                .Set("tokenizer.ggml.eos_token_id", (uint)Array.IndexOf(tokens, ByteLevelVocabulary.ImEnd))
                .Set("tokenizer.ggml.bos_token_id", (uint)Array.IndexOf(tokens, ByteLevelVocabulary.EndOfText))
                .Set("tokenizer.ggml.add_bos_token", false);
        }
        writer.Write(outPath);
        return outPath;
    }

    private static int[] RunLlamaTokenize(string model, string promptFile, bool parseSpecial)
    {
        var psi = new ProcessStartInfo(LlamaCppVocab.LlamaTokenize!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-m", model, "-f", promptFile, "--ids", "--no-escape", "--log-disable" })
        {
            psi.ArgumentList.Add(a);
        }
        if (!parseSpecial)
        {
            psi.ArgumentList.Add("--no-parse-special");
        }
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        string? line = stdout.Split('\n').LastOrDefault(l => l.StartsWith('['));
        if (p.ExitCode != 0 || line is null)
        {
            throw new InvalidOperationException($"llama-tokenize failed ({p.ExitCode}) on {model}: {stderr.Result}");
        }
        return line.Trim('[', ']', '\r', ' ').Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }
}
