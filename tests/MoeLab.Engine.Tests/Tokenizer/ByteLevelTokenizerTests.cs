using MoeLab.Engine.Tokenizer;
using Tok = MoeLab.Engine.Tokenizer.Tokenizer;

namespace MoeLab.Engine.Tests.Tokenizer;

public class ByteLevelTokenizerTests
{
    private static Tok Synth(string pre = "qwen2", int vocabSize = 512, bool addBos = false)
    {
        var (tokens, types, merges) = ByteLevelVocabulary.Create(vocabSize);
        int imEnd = Array.IndexOf(tokens, ByteLevelVocabulary.ImEnd);
        return Tok.Create("gpt2", pre, tokens, null, types, merges, bos: null, eos: imEnd, addBos: addBos);
    }

    private static int Id(Tok t, string text) => t.TokenId(text) ?? throw new InvalidOperationException($"no token '{text}'");

    [Theory]
    [InlineData("qwen2")]
    [InlineData("qwen35")]
    [InlineData("gpt-2")]
    [InlineData("llama-bpe")]
    [InlineData("default")]
    [InlineData("starcoder")]
    [InlineData("falcon")]
    public void RoundTripsArbitraryText(string pre)
    {
        var tok = Synth(pre);
        var rng = new Random(1234);
        string[] specials = [ByteLevelVocabulary.ImStart, ByteLevelVocabulary.ImEnd, ByteLevelVocabulary.EndOfText];
        for (int i = 0; i < 400; i++)
        {
            string s = TestText.Random(rng, 30, specials);
            foreach (bool parseSpecial in new[] { true, false })
            {
                int[] ids = tok.Encode(s, addSpecial: true, parseSpecial: parseSpecial);
                Assert.Equal(TestText.Sanitized(s), tok.Decode(ids));
            }
        }
    }

    [Fact]
    public void MergesApplyInRankOrder()
    {
        var tok = Synth();
        // "the" has no "t he" merge, so it ends as t + he; " cat": "a t" (rank 9) beats "Ġ c" (rank 13).
        int[] expected = [Id(tok, "t"), Id(tok, "he"), Id(tok, "Ġc"), Id(tok, "at")];
        Assert.Equal(expected, tok.Encode("the cat", addSpecial: false));
        // " the" chains merges: Ġ t → Ġt, h e → he, Ġt he → Ġthe
        Assert.Equal([Id(tok, "Ġthe")], tok.Encode(" the", addSpecial: false));
    }

    [Fact]
    public void Qwen2SplitsDigitsOneByOneAndKeepsNewlinesApart()
    {
        var tok = Synth();
        int[] ids = tok.Encode("x 2026\n\nat", addSpecial: false);
        string[] pieces = ids.Select(i => tok.Decode([i])).ToArray();
        Assert.Equal(["x", " ", "2", "0", "2", "6", "\n\n", "at"], pieces);
    }

    [Fact]
    public void SpecialTokensInTextBecomeTheirIdsOnlyWhenParsed()
    {
        var tok = Synth();
        int start = Id(tok, ByteLevelVocabulary.ImStart);
        int end = Id(tok, ByteLevelVocabulary.ImEnd);
        string chat = "<|im_start|>user\nhi<|im_end|>";

        int[] parsed = tok.Encode(chat, addSpecial: false, parseSpecial: true);
        Assert.Equal(start, parsed[0]);
        Assert.Equal(end, parsed[^1]);
        Assert.Equal(chat, tok.Decode(parsed));

        int[] literal = tok.Encode(chat, addSpecial: false, parseSpecial: false);
        Assert.DoesNotContain(start, literal);
        Assert.DoesNotContain(end, literal);
        Assert.Equal(chat, tok.Decode(literal));
    }

    [Fact]
    public void AddsBosOnlyWhenAskedAndDecodeDropsIt()
    {
        var (tokens, types, merges) = ByteLevelVocabulary.Create(300);
        int eot = Array.IndexOf(tokens, ByteLevelVocabulary.EndOfText);
        var tok = Tok.Create("gpt2", "qwen2", tokens, null, types, merges, bos: eot, eos: eot, addBos: true);
        int[] ids = tok.Encode("hi");
        Assert.Equal(eot, ids[0]);
        Assert.Equal("hi", tok.Decode(ids));
        Assert.Equal(ids[1..], tok.Encode("hi", addSpecial: false));
    }

    [Fact]
    public void EndOfGenerationCoversEosAndChatEnd()
    {
        var tok = Synth();
        Assert.True(tok.IsEndOfGeneration(Id(tok, ByteLevelVocabulary.ImEnd)));
        Assert.True(tok.IsEndOfGeneration(Id(tok, ByteLevelVocabulary.EndOfText)));
        Assert.False(tok.IsEndOfGeneration(Id(tok, ByteLevelVocabulary.ImStart)));
        Assert.False(tok.IsEndOfGeneration(Id(tok, "a")));
        Assert.Equal(Id(tok, ByteLevelVocabulary.ImEnd), tok.Eos);
    }

    [Fact]
    public void VocabularyHasTheRequestedSizeWithUnusedPadding()
    {
        var (tokens, types, merges) = ByteLevelVocabulary.Create(151936);
        Assert.Equal(151936, tokens.Length);
        Assert.Equal(tokens.Length, types.Length);
        Assert.Equal(tokens.Length, tokens.Distinct().Count());
        Assert.True(merges.Length >= 50);
        Assert.Equal((int)TokenType.Unused, types[^1]);
        Assert.Equal($"[PAD{tokens.Length - 1}]", tokens[^1]);
        Assert.Equal((int)TokenType.Control, types[Array.IndexOf(tokens, ByteLevelVocabulary.ImEnd)]);

        var tok = Tok.Create("gpt2", "qwen2", tokens, null, types, merges, null, null, false);
        Assert.Equal("", tok.Decode([tokens.Length - 1])); // unused tokens print nothing, as in llama.cpp
        Assert.Throws<ArgumentOutOfRangeException>(() => ByteLevelVocabulary.Create(ByteLevelVocabulary.MinimumSize - 1));
        Assert.Empty(ByteLevelVocabulary.Create(ByteLevelVocabulary.MinimumSize).Merges);
    }

    [Fact]
    public void EveryByteHasItsOwnToken()
    {
        var tok = Synth();
        for (int b = 0; b < 256; b++)
        {
            Assert.Equal([(byte)b], tok.PieceBytes(b).ToArray());
        }
    }
}
