namespace MoeLab.Engine.Tokenizer;

/// <summary>
/// The optional <c>tokenizer.ggml.*</c> scalars. Null means the key is absent and the model's default applies
/// (llama.cpp llama_vocab::impl::load).
/// </summary>
public sealed record TokenizerSettings
{
    public int? Bos { get; init; }
    public int? Eos { get; init; }
    public int? Eot { get; init; }
    public int? Eom { get; init; }
    public int? Unknown { get; init; }
    public bool? AddBos { get; init; }
    public bool? AddEos { get; init; }

    /// <summary><c>tokenizer.ggml.add_space_prefix</c>: SentencePiece prepends "▁" to the text (default true for SPM).</summary>
    public bool? AddSpacePrefix { get; init; }
}
