namespace MoeLab.Engine.Tokenizer;

/// <summary>
/// The byte-level BPE vocabulary <c>moelab model synth</c> writes into synthesized GGUFs (model "gpt2", pre "qwen2"):
/// ids 0..255 are the 256 byte tokens (GPT-2 byte-to-unicode chars), then tokens built by a fixed list of merges of
/// common English pairs (so encoding exercises real BPE merges), then the Qwen chat tokens, then "[PADn]" tokens of
/// type UNUSED up to the model's vocabulary size, as convert_hf_to_gguf.py pads Qwen vocabularies.
/// </summary>
public static class ByteLevelVocabulary
{
    public const string EndOfText = "<|endoftext|>";
    public const string ImStart = "<|im_start|>";
    public const string ImEnd = "<|im_end|>";

    /// <summary>The smallest vocabulary that holds the byte tokens and the special tokens.</summary>
    public const int MinimumSize = 256 + 3;

    // Pairs in merge order; each right or left side is a byte char or the result of an earlier merge.
    // "Ġ" is the byte-level char for a space, "Ċ" for '\n'.
    private static readonly string[] MergeList =
    [
        "Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he", "e r", "Ġ s", "a t", "Ġ w", "Ġ o", "e n", "Ġ c", "i t", "i s",
        "a n", "o r", "e s", "Ġ b", "e d", "Ġ f", "in g", "Ġ p", "o u", "Ġa n", "a l", "a r", "Ġt o", "Ġ m", "Ġo f",
        "Ġ in", "Ġ d", "Ġ h", "Ġan d", "i c", "a s", "l e", "Ġt h", "i on", "o m", "l l", "en t", "Ġ n", "Ġ l", "s t",
        "Ġ re", "v e", "Ġ e", "r o", "l y", "Ġb e", "Ġ g", "Ġ T", "c t", "Ġ S", "i d", "o t", "Ġ I", "u t", "e t", "Ġ A",
        "Ġ is", "Ġ on", "i m", "a m", "o w", "a y", "a d", "s e", "Ġth at", "Ġ C", "i g", "Ġf or", "a c", "Ġ y", "v er",
        "u r", "Ġ u", "l d", "Ġs t", "Ġ M", "' s", "Ġ he", "Ġ it", "at ion", "it h", "i r", "c e", "Ġy ou", "Ġw ith",
        "Ġ Ġ", "ĠĠ ĠĠ", "Ċ Ċ", "Ġ Ċ", ". Ċ", "Ġ (", "( )", "Ġ =", "Ġ {", "Ġ }", "Ġ \"", "- -",
    ];

    /// <summary>
    /// Tokens, their GGUF token types and the merges for a vocabulary of exactly <paramref name="vocabSize"/> tokens.
    /// Merges are dropped from the end when the vocabulary is too small to hold them all.
    /// </summary>
    public static (string[] Tokens, int[] Types, string[] Merges) Create(int vocabSize)
    {
        if (vocabSize < MinimumSize)
        {
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize,
                $"a byte-level vocabulary needs at least {MinimumSize} tokens (256 bytes + 3 special tokens)");
        }
        var tokens = new List<string>(vocabSize);
        var types = new List<int>(vocabSize);
        var known = new HashSet<string>(StringComparer.Ordinal);
        for (int b = 0; b < 256; b++)
        {
            string t = ByteLevelEncoding.Encode((byte)b).ToString();
            tokens.Add(t);
            types.Add((int)TokenType.Normal);
            known.Add(t);
        }

        var merges = new List<string>();
        int room = vocabSize - MinimumSize;
        foreach (string m in MergeList)
        {
            if (merges.Count >= room)
            {
                break;
            }
            int sp = m.IndexOf(' ', 1);
            string left = m[..sp];
            string right = m[(sp + 1)..];
            string merged = left + right;
            if (!known.Contains(left) || !known.Contains(right) || known.Contains(merged))
            {
                throw new InvalidOperationException($"merge list entry '{m}' is inconsistent"); // a bug in MergeList
            }
            merges.Add(m);
            tokens.Add(merged);
            types.Add((int)TokenType.Normal);
            known.Add(merged);
        }

        foreach (var special in new[] { EndOfText, ImStart, ImEnd })
        {
            tokens.Add(special);
            types.Add((int)TokenType.Control);
        }
        for (int id = tokens.Count; id < vocabSize; id++)
        {
            tokens.Add($"[PAD{id}]");
            types.Add((int)TokenType.Unused);
        }
        return (tokens.ToArray(), types.ToArray(), merges.ToArray());
    }
}
