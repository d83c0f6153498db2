using MoeLab.Engine.Tokenizer;

namespace MoeLab.Engine.Tests.Tokenizer;

/// <summary>The hand-written word splitters must agree with the tokenizer.json regexes they stand for.</summary>
public class PreTokenizerTests
{
    public static TheoryData<string, string> SplittersAndTheirRegex => new()
    {
        { "gpt-2", @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+" },
        { "qwen2", @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" },
        { "llama-bpe", @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" },
        { "qwen35", @"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+" },
    };

    [Theory]
    [MemberData(nameof(SplittersAndTheirRegex))]
    public void ScannerAgreesWithRegex(string pre, string regex)
    {
        var scanner = PreTokenizer.ForName(pre);
        var reference = PreTokenizer.FromRegexes(regex);
        var rng = new Random(7);
        for (int i = 0; i < 3000; i++)
        {
            string s = TestText.Random(rng, 25);
            int[] cps = UnicodeClass.CodePoints(s);
            Assert.Equal(Words(cps, reference.Split(cps)), Words(cps, scanner.Split(cps)));
        }
    }

    [Theory]
    [InlineData("qwen2", "Hello world's 123 !!\n\n  x", new[] { "Hello", " world", "'s", " ", "1", "2", "3", " !!\n\n", " ", " x" })]
    [InlineData("llama-bpe", "12345 I'LL", new[] { "123", "45", " I", "'LL" })]
    [InlineData("gpt-2", "I'LL  go", new[] { "I", "'", "LL", " ", " go" })]
    [InlineData("qwen35", "cafe\u0301 \u0301x", new[] { "cafe\u0301", " \u0301x" })]
    public void SplitsKnownText(string pre, string text, string[] expected)
    {
        int[] cps = UnicodeClass.CodePoints(text);
        Assert.Equal(expected, Words(cps, PreTokenizer.ForName(pre).Split(cps)));
    }

    private static string[] Words(int[] cps, List<int> lengths)
    {
        var words = new string[lengths.Count];
        int start = 0;
        for (int i = 0; i < lengths.Count; i++)
        {
            words[i] = string.Concat(cps.Skip(start).Take(lengths[i]).Select(char.ConvertFromUtf32));
            start += lengths[i];
        }
        Assert.Equal(cps.Length, start);
        return words;
    }
}
