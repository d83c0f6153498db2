using MoeLab.Engine.Tokenizer;
using Tok = MoeLab.Engine.Tokenizer.Tokenizer;

namespace MoeLab.Engine.Tests.Tokenizer;

public class SpmTokenizerTests
{
    // A hand-made SentencePiece vocabulary in Mixtral's layout: <unk> <s> </s>, 256 byte tokens, then scored pieces.
    internal static Tok Tiny(bool addBos = true)
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<int> { (int)TokenType.Unknown, (int)TokenType.Control, (int)TokenType.Control };
        var scores = new List<float> { 0, 0, 0 };
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            types.Add((int)TokenType.Byte);
            scores.Add(0);
        }
        (string, float)[] pieces =
        [
            ("▁", -10), ("h", -20), ("e", -20), ("l", -20), ("o", -20), ("w", -20), ("r", -20), ("d", -20),
            ("▁h", -1), ("ll", -2), ("llo", -3), ("▁he", -4), ("▁hello", -5), ("he", -6),
            ("▁w", -7), ("or", -8), ("▁wor", -9), ("ld", -9.5f), ("▁world", -9.7f),
        ];
        foreach (var (text, score) in pieces)
        {
            tokens.Add(text);
            types.Add((int)TokenType.Normal);
            scores.Add(score);
        }
        return Tok.Create("llama", null, tokens.ToArray(), scores.ToArray(), types.ToArray(), null, bos: 1, eos: 2, addBos: addBos);
    }

    private static int Id(Tok t, string text) => t.TokenId(text) ?? throw new InvalidOperationException($"no token '{text}'");

    [Fact]
    public void MergesByScoreIntoWholeWords()
    {
        var tok = Tiny();
        Assert.Equal([1, Id(tok, "▁hello"), Id(tok, "▁world")], tok.Encode("hello world"));
        Assert.Equal("hello world", tok.Decode(tok.Encode("hello world")));
    }

    [Fact]
    public void UnknownCharactersFallBackToByteTokens()
    {
        var tok = Tiny();
        int[] ids = tok.Encode("hé", addSpecial: false);
        Assert.Equal([Id(tok, "▁h"), Id(tok, "<0xC3>"), Id(tok, "<0xA9>")], ids);
        Assert.Equal("hé", tok.Decode(ids));
    }

    [Fact]
    public void RoundTripsArbitraryText()
    {
        var tok = Tiny();
        var rng = new Random(99);
        for (int i = 0; i < 400; i++)
        {
            string s = TestText.Random(rng, 30).Replace('\u2581', '_'); // "▁" itself means a space in SPM
            int[] ids = tok.Encode(s, addSpecial: true, parseSpecial: false);
            Assert.Equal(1, ids[0]);
            Assert.Equal(TestText.Sanitized(s), tok.Decode(ids));
        }
    }

    [Fact]
    public void ControlTokensAreParsedOnlyWhenAsked()
    {
        var tok = Tiny(addBos: false);
        Assert.Equal([Id(tok, "▁hello"), 2], tok.Encode("hello</s>", addSpecial: false, parseSpecial: true));
        Assert.DoesNotContain(2, tok.Encode("hello</s>", addSpecial: false, parseSpecial: false));
        Assert.True(tok.IsEndOfGeneration(2));
        Assert.False(tok.IsEndOfGeneration(1));
    }

    [Fact]
    public void EmptyTextIsJustBos()
    {
        var tok = Tiny();
        Assert.Equal([1], tok.Encode(""));
        Assert.Empty(tok.Encode("", addSpecial: false));
        Assert.Equal("", tok.Decode([1]));
    }
}
