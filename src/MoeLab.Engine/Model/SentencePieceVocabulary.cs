using MoeLab.Engine.Tokenizer;

namespace MoeLab.Engine.Model;

/// <summary>
/// The SentencePiece vocabulary <c>moelab model synth</c> writes into synthesized Llama/Mixtral GGUFs
/// (<c>tokenizer.ggml.model = llama</c>), in Mixtral's layout: &lt;unk&gt; &lt;s&gt; &lt;/s&gt;, the 256 byte-fallback
/// tokens &lt;0x00&gt;..&lt;0xFF&gt;, then scored pieces: "▁" and printable ASCII characters, then lowercase words of
/// growing length with and without the "▁" word prefix. Every piece's prefixes are pieces too, so the score-driven
/// SPM merges reach all of them; anything else falls back to bytes.
/// </summary>
public static class SentencePieceVocabulary
{
    public const int MinimumSize = 3 + 256 + 1;

    public static (string[] Tokens, float[] Scores, int[] Types) Create(int vocabSize)
    {
        if (vocabSize < MinimumSize)
        {
            throw new ArgumentOutOfRangeException(nameof(vocabSize), vocabSize, $"a SentencePiece vocabulary needs at least {MinimumSize} tokens (3 special, 256 bytes, '▁')");
        }

        var tokens = new List<string>(vocabSize) { "<unk>", "<s>", "</s>" };
        var types = new List<int>(vocabSize) { (int)TokenType.Unknown, (int)TokenType.Control, (int)TokenType.Control };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            types.Add((int)TokenType.Byte);
        }

        foreach (string piece in Pieces())
        {
            if (tokens.Count == vocabSize)
            {
                break;
            }

            tokens.Add(piece);
            types.Add((int)TokenType.Normal);
        }

        // Scores: specials and bytes 0 (never merged to), pieces in decreasing order as SentencePiece ranks them.
        var scores = new float[tokens.Count];
        for (int i = 259; i < scores.Length; i++)
        {
            scores[i] = -(i - 259);
        }

        return ([.. tokens], scores, [.. types]);
    }

    private static IEnumerable<string> Pieces()
    {
        yield return "\u2581";
        for (char ch = '!'; ch <= '~'; ch++)
        {
            yield return ch.ToString();
        }

        const string letters = "etaoinshrdlcumwfgypbvkjxqz"; // by English frequency, so small vocabularies keep the common ones
        var previous = new List<string> { string.Empty };
        for (int length = 1; length <= 4; length++)
        {
            var current = new List<string>(previous.Count * letters.Length);
            foreach (string stem in previous)
            {
                foreach (char ch in letters)
                {
                    current.Add(stem + ch);
                }
            }

            foreach (string word in current)
            {
                yield return "\u2581" + word;
                if (length > 1)
                {
                    yield return word;
                }
            }

            previous = current;
        }
    }
}
