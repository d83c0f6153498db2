using System.Text;

namespace MoeLab.Engine.Tests.Tokenizer;

/// <summary>Random text that stresses tokenizers: scripts, emoji (surrogate pairs), combining marks, odd spaces,
/// contractions, digits of several kinds, and unpaired surrogates.</summary>
internal static class TestText
{
    private static readonly string[] Pieces =
    [
        "a", "b", "e", "h", "l", "o", "t", "n", "s", "x", "the", "hello", "world", "Apple", "ZED", "ing", "tion",
        "0", "1", "7", "42", "2026", "3.14", " ", "  ", "   ", "\n", "\n\n", "\r\n", "\t", " \n ", "\u00A0", "\u3000",
        ".", ",", "!", "?", "-", "--", "'", "\"", "(", ")", "{", "}", "[", "]", "<", ">", "|", "=", "+", "$", "^", "~", "`", "@", "#", "%", "&", "*", "/", "\\", "_", ":", ";",
        "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'Re",
        "é", "ü", "ß", "ñ", "Ω", "ж", "e\u0301", "a\u0308\u0323", "\u0301", "Ä", "Æ",
        "中", "文", "日本語", "한국어", "ไทย", "عربى", "हिन्दी",
        "🌍", "👍🏽", "👨\u200D👩\u200D👧", "🇫🇷", "𝔘𝔫𝔦", "😀😀",
        "٣", "Ⅻ", "½", "²", "𝟘",
        "\uD800", "\uDC00", "\uDBFF", "\u200B", "\uFEFF", "\uFFFD", "\u0000", "\u007F", "\u0085",
    ];

    public static string Random(Random rng, int maxPieces, IReadOnlyList<string>? extra = null)
    {
        var sb = new StringBuilder();
        int n = rng.Next(0, maxPieces + 1);
        for (int i = 0; i < n; i++)
        {
            if (extra is not null && extra.Count > 0 && rng.Next(20) == 0)
            {
                sb.Append(extra[rng.Next(extra.Count)]);
            }
            else if (rng.Next(10) == 0)
            {
                sb.Append((char)rng.Next(0x20, 0xD7FF)); // any BMP char
            }
            else
            {
                sb.Append(Pieces[rng.Next(Pieces.Length)]);
            }
        }
        return sb.ToString();
    }

    /// <summary>What the text means as UTF-8: unpaired surrogates become U+FFFD.</summary>
    public static string Sanitized(string s) => Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(s));
}
