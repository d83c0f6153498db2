using MoeLab.Engine.Tokenizer;
using Tok = MoeLab.Engine.Tokenizer.Tokenizer;

namespace MoeLab.Engine.Tests.Tokenizer;

public class TokenizerErrorTests
{
    private static readonly (string[] Tokens, int[] Types, string[] Merges) Vocab = ByteLevelVocabulary.Create(300);

    private static string Fails(Action a) => Assert.ThrowsAny<InvalidDataException>(a).Message;

    [Fact]
    public void UnknownModelAndPreTokenizerAreNamed()
    {
        Assert.Contains("tokenizer.ggml.model = 'bert'", Fails(() => Tok.Create("bert", null, Vocab.Tokens, null, null, null, null, null, false)));
        string msg = Fails(() => Tok.Create("gpt2", "qwen9", Vocab.Tokens, null, Vocab.Types, Vocab.Merges, null, null, false));
        Assert.Contains("tokenizer.ggml.pre = 'qwen9'", msg);
        Assert.Contains("qwen2", msg);
    }

    [Fact]
    public void MalformedArraysAreNamed()
    {
        Assert.Contains("tokenizer.ggml.merges is missing",
            Fails(() => Tok.Create("gpt2", "qwen2", Vocab.Tokens, null, Vocab.Types, null, null, null, false)));
        Assert.Contains("tokenizer.ggml.token_type has 3 entries",
            Fails(() => Tok.Create("gpt2", "qwen2", Vocab.Tokens, null, [1, 1, 1], Vocab.Merges, null, null, false)));
        Assert.Contains("tokenizer.ggml.scores has 0 entries",
            Fails(() => Tok.Create("llama", null, Vocab.Tokens, [], null, null, null, null, false)));
        Assert.Contains("tokenizer.ggml.tokens is missing or empty",
            Fails(() => Tok.Create("llama", null, [], null, null, null, null, null, false)));
        Assert.Contains("duplicates tokenizer.ggml.tokens[0]",
            Fails(() => Tok.Create("llama", null, ["a", "b", "a"], null, null, null, null, null, false)));
        Assert.Contains("tokenizer.ggml.merges[1] = 'ab'",
            Fails(() => Tok.Create("gpt2", "qwen2", Vocab.Tokens, null, Vocab.Types, ["a b", "ab"], null, null, false)));
        Assert.Contains("tokenizer.ggml.tokens[1] = '<0xZZ>' has type BYTE",
            Fails(() => Tok.Create("llama", null, ["<unk>", "<0xZZ>"], null, [2, 6], null, null, null, false)));
        Assert.Contains("tokenizer.ggml.eos_token_id = 300 is outside the vocabulary of 300 tokens",
            Fails(() => Tok.Create("gpt2", "qwen2", Vocab.Tokens, null, Vocab.Types, Vocab.Merges, null, 300, false)));
    }

    [Fact]
    public void OutOfRangeIdsAreRejectedWhenDecoding()
    {
        var tok = Tok.Create("gpt2", "qwen2", Vocab.Tokens, null, Vocab.Types, Vocab.Merges, null, null, false);
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([300]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tok.Decode([-1]));
    }
}
