using System.Globalization;
using System.Text;

namespace MoeLab.Engine.Tokenizer;

/// <summary>
/// The code point classes the pre-tokenizers split on (llama.cpp's unicode_cpt_flags): general category groups
/// from the runtime's Unicode tables, plus the White_Space property list from PropList.txt.
/// </summary>
internal static class UnicodeClass
{
    public static bool IsLetter(int cp) => Category(cp) is >= UnicodeCategory.UppercaseLetter and <= UnicodeCategory.OtherLetter;

    public static bool IsNumber(int cp) => Category(cp) is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    public static bool IsMark(int cp) => Category(cp) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark;

    // Unicode White_Space property (PropList.txt), not char.IsWhiteSpace: the regexes' \s means this set.
    public static bool IsWhitespace(int cp) => cp switch
    {
        >= 0x09 and <= 0x0D => true,
        0x20 or 0x85 or 0xA0 or 0x1680 => true,
        >= 0x2000 and <= 0x200A => true,
        0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000 => true,
        _ => false,
    };

    public static UnicodeCategory Category(int cp)
    {
        if (cp < 0x80)
        {
            return CharUnicodeInfo.GetUnicodeCategory((char)cp);
        }
        // Surrogate code points cannot be Runes; they only arrive here from malformed input already replaced by U+FFFD.
        return Rune.IsValid(cp) ? Rune.GetUnicodeCategory(new Rune(cp)) : UnicodeCategory.Surrogate;
    }

    /// <summary>Decodes a string into code points; an unpaired surrogate becomes U+FFFD, as UTF-8 conversion does.</summary>
    public static int[] CodePoints(ReadOnlySpan<char> text)
    {
        var result = new int[text.Length];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                result[n++] = char.ConvertToUtf32(c, text[i + 1]);
                i++;
            }
            else
            {
                result[n++] = char.IsSurrogate(c) ? 0xFFFD : c;
            }
        }
        return n == result.Length ? result : result.AsSpan(0, n).ToArray();
    }

    /// <summary>Replaces unpaired surrogates by U+FFFD so the text is exactly what its UTF-8 bytes say.</summary>
    public static string Sanitize(string text)
    {
        int i = 0;
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(c))
            {
                break;
            }
        }
        if (i == text.Length)
        {
            return text;
        }
        var sb = new StringBuilder(text.Length);
        foreach (int cp in CodePoints(text))
        {
            sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }
}
