namespace MoeLab.Engine.Tokenizer;

/// <summary>Token types as stored in <c>tokenizer.ggml.token_type</c> (llama.cpp's <c>llama_token_type</c>).</summary>
public enum TokenType
{
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
}

/// <summary>What a token is, as a set of flags: a token may be both Control and Unused.</summary>
[Flags]
internal enum TokenAttr
{
    None = 0,
    Undefined = 1 << 0,
    Unknown = 1 << 1,
    Unused = 1 << 2,
    Normal = 1 << 3,
    Control = 1 << 4,
    UserDefined = 1 << 5,
    Byte = 1 << 6,
}
