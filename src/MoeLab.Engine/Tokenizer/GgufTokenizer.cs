using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Tokenizer;

/// <summary>Reads the <c>tokenizer.ggml.*</c> keys of a GGUF file into a <see cref="Tokenizer"/>.</summary>
public static class GgufTokenizer
{
    public static Tokenizer Load(GgufFile gguf)
    {
        ArgumentNullException.ThrowIfNull(gguf);
        try
        {
            string model = gguf.GetStringOrNull("tokenizer.ggml.model")
                ?? throw new InvalidDataException("metadata key 'tokenizer.ggml.model' is missing");
            var settings = new TokenizerSettings
            {
                Bos = Id(gguf, "tokenizer.ggml.bos_token_id"),
                Eos = Id(gguf, "tokenizer.ggml.eos_token_id"),
                Eot = Id(gguf, "tokenizer.ggml.eot_token_id"),
                Eom = Id(gguf, "tokenizer.ggml.eom_token_id"),
                Unknown = Id(gguf, "tokenizer.ggml.unknown_token_id"),
                AddBos = Flag(gguf, "tokenizer.ggml.add_bos_token"),
                AddEos = Flag(gguf, "tokenizer.ggml.add_eos_token"),
                AddSpacePrefix = Flag(gguf, "tokenizer.ggml.add_space_prefix"),
            };
            return Tokenizer.Create(
                model,
                gguf.GetStringOrNull("tokenizer.ggml.pre"),
                gguf.GetArray<string>("tokenizer.ggml.tokens") ?? throw new InvalidDataException("metadata key 'tokenizer.ggml.tokens' is missing"),
                gguf.GetArray<float>("tokenizer.ggml.scores"),
                Ints(gguf, "tokenizer.ggml.token_type"),
                gguf.GetArray<string>("tokenizer.ggml.merges"),
                settings);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{gguf.Path}: {e.Message}", e);
        }
    }

    private static int? Id(GgufFile gguf, string key)
    {
        if (!gguf.Has(key))
        {
            return null;
        }
        long v = gguf.GetInt(key);
        // llama.cpp reads these as uint32; anything beyond int range cannot be a token id
        return v is >= 0 and <= int.MaxValue ? (int)v : throw new InvalidDataException($"{key} = {v} is not a token id");
    }

    private static bool? Flag(GgufFile gguf, string key) => gguf.Has(key) ? gguf.GetBool(key, false) : null;

    private static int[]? Ints(GgufFile gguf, string key)
    {
        if (!gguf.Metadata.TryGetValue(key, out var value))
        {
            return null;
        }
        return value.Value switch
        {
            int[] a => a,
            uint[] a => Array.ConvertAll(a, x => unchecked((int)x)),
            Array a => Enumerable.Range(0, a.Length).Select(i => Convert.ToInt32(a.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
            _ => throw new InvalidDataException($"{key} is {value.Type}, expected an array of integers"),
        };
    }
}
