using System.Text;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Tokenizer;

namespace MoeLab.Engine.Tests.Tokenizer;

/// <summary>
/// llama.cpp's vocab-only GGUFs and their expected encodings (models/ggml-vocab-NAME.gguf + .inp/.out in the
/// llama.cpp repository), found through MOELAB_VOCAB_DIR. Never checked in.
/// </summary>
internal static class LlamaCppVocab
{
    public const string DirVariable = "MOELAB_VOCAB_DIR";
    public const string BinVariable = "MOELAB_LLAMA_BIN";

    public static string? Dir => Existing(Environment.GetEnvironmentVariable(DirVariable));

    /// <summary>The directory holding llama-tokenize (MOELAB_LLAMA_BIN may name the directory or the binary).</summary>
    public static string? LlamaTokenize
    {
        get
        {
            string? v = Environment.GetEnvironmentVariable(BinVariable);
            if (string.IsNullOrEmpty(v))
            {
                return null;
            }
            string candidate = Directory.Exists(v) ? Path.Combine(v, "llama-tokenize") : v;
            return File.Exists(candidate) ? candidate : null;
        }
    }

    private static string? Existing(string? dir) => !string.IsNullOrEmpty(dir) && Directory.Exists(dir) ? dir : null;

    /// <summary>Vocab GGUFs whose tokenizer model and pre-tokenizer MoeLab implements.</summary>
    public static IEnumerable<string> SupportedFiles()
    {
        if (Dir is not string dir)
        {
            yield break;
        }
        foreach (var path in Directory.GetFiles(dir, "ggml-vocab-*.gguf").Order(StringComparer.Ordinal))
        {
            var gguf = GgufFile.Open(path);
            string? model = gguf.GetStringOrNull("tokenizer.ggml.model");
            string? pre = gguf.GetStringOrNull("tokenizer.ggml.pre");
            bool supported = model == "llama" || (model == "gpt2" && (pre is null || MoeLab.Engine.Tokenizer.Tokenizer.SupportedPreTokenizers.Contains(pre)));
            if (supported)
            {
                yield return path;
            }
        }
    }

    /// <summary>The test cases of llama.cpp's test-tokenizer-0: inputs split by "\n__ggml_vocab_test__\n", one output line each.</summary>
    public static List<(string Text, int[] Ids)> ReadCases(string ggufPath)
    {
        string raw = Encoding.UTF8.GetString(File.ReadAllBytes(ggufPath + ".inp"));
        string[] inputs = raw.Split("\n__ggml_vocab_test__\n");
        if (inputs.Length > 0 && inputs[^1].Length == 0)
        {
            inputs = inputs[..^1];
        }
        string[] outputs = File.ReadAllLines(ggufPath + ".out", Encoding.UTF8);
        if (inputs.Length != outputs.Length)
        {
            throw new InvalidDataException($"{ggufPath}: {inputs.Length} inputs but {outputs.Length} output lines");
        }
        var cases = new List<(string, int[])>(inputs.Length);
        for (int i = 0; i < inputs.Length; i++)
        {
            int[] ids = outputs[i].Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(s => int.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            cases.Add((inputs[i], ids));
        }
        return cases;
    }
}

/// <summary>Runs only when MOELAB_VOCAB_DIR names a directory.</summary>
public sealed class VocabDirTheoryAttribute : TheoryAttribute
{
    public VocabDirTheoryAttribute()
    {
        if (LlamaCppVocab.Dir is null)
        {
            Skip = $"set {LlamaCppVocab.DirVariable} to a directory with llama.cpp's models/ggml-vocab-*.gguf(.inp/.out)";
        }
    }
}

/// <summary>Runs only when MOELAB_VOCAB_DIR and MOELAB_LLAMA_BIN (llama-tokenize) are both available.</summary>
public sealed class LlamaTokenizeTheoryAttribute : TheoryAttribute
{
    public LlamaTokenizeTheoryAttribute()
    {
        if (LlamaCppVocab.Dir is null || LlamaCppVocab.LlamaTokenize is null)
        {
            Skip = $"set {LlamaCppVocab.DirVariable} (vocab GGUFs) and {LlamaCppVocab.BinVariable} (directory with llama-tokenize)";
        }
    }
}
