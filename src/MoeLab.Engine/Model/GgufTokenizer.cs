using MoeLab.Engine.Gguf;
using MoeLab.Engine.Tokenizer;
using TextTokenizer = MoeLab.Engine.Tokenizer.Tokenizer;

namespace MoeLab.Engine.Model;

/// <summary>Builds the tokenizer a GGUF file describes (<c>tokenizer.ggml.*</c>), as llama.cpp's vocab loader reads it.</summary>
public static class GgufTokenizer
{
    public static TextTokenizer Load(GgufFile f)
    {
        string model = f.GetStringOrNull("tokenizer.ggml.model")
                       ?? throw new GgufFormatException($"{f.Path}: no tokenizer (tokenizer.ggml.model is missing)");
        string[] tokens = f.GetArray<string>("tokenizer.ggml.tokens")
                          ?? throw new GgufFormatException($"{f.Path}: tokenizer.ggml.tokens is missing");
        int? Id(string key) => f.Has(key) ? checked((int)f.GetInt(key)) : null;
        bool? Flag(string key) => f.Has(key) ? f.GetBool(key, false) : null;
        try
        {
            return TextTokenizer.Create(
                model,
                f.GetStringOrNull("tokenizer.ggml.pre"),
                tokens,
                f.GetArray<float>("tokenizer.ggml.scores"),
                f.GetArray<int>("tokenizer.ggml.token_type"),
                f.GetArray<string>("tokenizer.ggml.merges"),
                new TokenizerSettings
                {
                    Bos = Id("tokenizer.ggml.bos_token_id"),
                    Eos = Id("tokenizer.ggml.eos_token_id"),
                    Eot = Id("tokenizer.ggml.eot_token_id"),
                    Eom = Id("tokenizer.ggml.eom_token_id"),
                    Unknown = Id("tokenizer.ggml.unknown_token_id"),
                    AddBos = Flag("tokenizer.ggml.add_bos_token"),
                    AddEos = Flag("tokenizer.ggml.add_eos_token"),
                    AddSpacePrefix = Flag("tokenizer.ggml.add_space_prefix"),
                });
        }
        catch (ArgumentException e)
        {
            throw new GgufFormatException($"{f.Path}: tokenizer: {e.Message}");
        }
    }
}
