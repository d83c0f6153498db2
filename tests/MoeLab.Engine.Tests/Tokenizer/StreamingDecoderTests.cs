using System.Text;
using MoeLab.Engine.Tokenizer;
using Tok = MoeLab.Engine.Tokenizer.Tokenizer;

namespace MoeLab.Engine.Tests.Tokenizer;

public class StreamingDecoderTests
{
    [Fact]
    public void EmitsOnlyCompleteCharactersWhenTokensSplitThem()
    {
        var (tokens, types, merges) = ByteLevelVocabulary.Create(400);
        var tok = Tok.Create("gpt2", "qwen2", tokens, null, types, merges, null, null, false);
        string text = "héllo 🌍 中文 👨\u200D👩\u200D👧!";
        int[] ids = tok.Encode(text, addSpecial: false);
        Assert.True(ids.Length > text.Length / 2); // emoji and CJK are split into byte tokens

        var decoder = tok.CreateDecoder();
        var sb = new StringBuilder();
        int splitCalls = 0;
        foreach (int id in ids)
        {
            string part = decoder.Append(id);
            Assert.DoesNotContain('\uFFFD', part);
            Assert.False(part.Length > 0 && char.IsHighSurrogate(part[^1]), "a surrogate pair was cut");
            if (part.Length == 0)
            {
                splitCalls++;
            }
            sb.Append(part);
        }
        sb.Append(decoder.Flush());
        Assert.Equal(text, sb.ToString());
        Assert.True(splitCalls > 0);
    }

    [Fact]
    public void SpanFormAgreesAndAnUnfinishedCharacterFlushesAsReplacement()
    {
        var tok = SpmTokenizerTests.Tiny();
        int[] ids = tok.Encode("hé 🌍");
        var decoder = tok.CreateDecoder();
        Span<char> buffer = stackalloc char[64];
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            int n = decoder.Append(id, buffer);
            sb.Append(buffer[..n]);
        }
        Assert.Equal("hé 🌍", sb.ToString() + decoder.Flush());

        decoder.Reset();
        Assert.Equal("", decoder.Append(tok.TokenId("<0xF0>")!.Value));
        Assert.Equal("\uFFFD", decoder.Flush());
    }

    [Fact]
    public void ControlTokensAreSilentUnlessRendered()
    {
        var tok = SpmTokenizerTests.Tiny();
        Assert.Equal("", tok.CreateDecoder().Append(2));
        Assert.Equal("</s>", tok.CreateDecoder(renderSpecial: true).Append(2));
    }
}
