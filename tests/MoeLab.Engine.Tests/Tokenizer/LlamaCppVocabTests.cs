using MoeLab.Engine.Gguf;
using MoeLab.Engine.Tokenizer;

namespace MoeLab.Engine.Tests.Tokenizer;

/// <summary>Every reference input of llama.cpp's tokenizer tests encodes to llama.cpp's expected ids.</summary>
public class LlamaCppVocabTests
{
    public static TheoryData<string> VocabFiles()
    {
        var data = new TheoryData<string>();
        foreach (var path in LlamaCppVocab.SupportedFiles())
        {
            if (File.Exists(path + ".inp") && File.Exists(path + ".out"))
            {
                data.Add(Path.GetFileName(path));
            }
        }
        if (data.Count == 0)
        {
            data.Add("(no vocab files)"); // keeps the skipped theory visible; with the variable set this fails below
        }
        return data;
    }

    [VocabDirTheory]
    [MemberData(nameof(VocabFiles))]
    public void EncodesReferenceInputsLikeLlamaCpp(string file)
    {
        string path = Path.Combine(LlamaCppVocab.Dir!, file);
        Assert.True(File.Exists(path), $"no supported ggml-vocab-*.gguf with .inp/.out in {LlamaCppVocab.Dir}");
        var tok = GgufTokenizer.Load(GgufFile.Open(path));
        var cases = LlamaCppVocab.ReadCases(path);
        Assert.NotEmpty(cases);
        var failures = new List<string>();
        foreach (var (text, expected) in cases)
        {
            // test-tokenizer-0 encodes with add_special = false, parse_special = false
            int[] actual = tok.Encode(text, addSpecial: false, parseSpecial: false);
            if (!actual.SequenceEqual(expected))
            {
                failures.Add($"'{Escape(text)}': expected [{string.Join(' ', expected)}] got [{string.Join(' ', actual)}]");
            }
        }
        Assert.True(failures.Count == 0, $"{file}: {failures.Count}/{cases.Count} differ:\n" + string.Join('\n', failures.Take(10)));
    }

    internal static string Escape(string s) => s.Replace("\n", "\\n").Replace("\r", "\\r").Replace("\t", "\\t");
}
