using System.Text;

namespace MoeLab.Engine.Tokenizer;

/// <summary>
/// The tokenizer a GGUF file describes (<c>tokenizer.ggml.*</c>), encoding and decoding exactly as llama.cpp's
/// llama-vocab.cpp does: <c>gpt2</c> byte-level BPE with its pre-tokenizer (qwen2, qwen35, llama-bpe, gpt-2, default,
/// ...) and <c>llama</c> SentencePiece with byte fallback. Special tokens written in the text (e.g. &lt;|im_start|&gt;)
/// are recognised before the text is split into words.
/// </summary>
public sealed class Tokenizer
{
    private const char SpmSpace = '\u2581'; // "▁" stands for a space in SentencePiece vocabularies

    private readonly string[] tokens;
    private readonly TokenAttr[] attrs;
    private readonly float[] scores;
    private readonly Dictionary<string, int> tokenToId;
    private readonly PreTokenizer? preTokenizer;
    private readonly BpeMerger? bpe;
    private readonly SpmMerger? spm;
    private readonly int[] specialTokens; // longest text first, so "<|im_start|>" wins over a shorter prefix token
    private readonly HashSet<int> endOfGeneration;
    private readonly byte[][] pieces;

    private Tokenizer(string model, string? pre, string[] tokens, TokenAttr[] attrs, float[] scores,
        Dictionary<string, int> tokenToId, PreTokenizer? preTokenizer, BpeMerger? bpe, TokenizerSettings settings, bool isSpm)
    {
        Model = model;
        Pre = pre;
        this.tokens = tokens;
        this.attrs = attrs;
        this.scores = scores;
        this.tokenToId = tokenToId;
        this.preTokenizer = preTokenizer;
        this.bpe = bpe;
        IsSentencePiece = isSpm;

        int n = tokens.Length;
        // llama.cpp defaults: SPM <unk>=0 <s>=1 </s>=2; BPE (GPT-2 vocab) 11 for both.
        Bos = ResolveId("tokenizer.ggml.bos_token_id", settings.Bos, isSpm ? 1 : 11, n);
        Eos = ResolveId("tokenizer.ggml.eos_token_id", settings.Eos, isSpm ? 2 : 11, n);
        Unknown = ResolveId("tokenizer.ggml.unknown_token_id", settings.Unknown, isSpm ? 0 : null, n);
        int? eot = ResolveId("tokenizer.ggml.eot_token_id", settings.Eot, null, n);
        int? eom = ResolveId("tokenizer.ggml.eom_token_id", settings.Eom, null, n);
        AddBos = settings.AddBos ?? DefaultAddBos(model, pre);
        AddEos = settings.AddEos ?? false;
        AddSpacePrefix = settings.AddSpacePrefix ?? isSpm;
        if (AddBos && Bos is null)
        {
            throw new InvalidDataException("tokenizer.ggml.add_bos_token is true but the vocabulary has no BOS token");
        }
        if (AddEos && Eos is null)
        {
            throw new InvalidDataException("tokenizer.ggml.add_eos_token is true but the vocabulary has no EOS token");
        }

        endOfGeneration = FindEndOfGeneration(eot, eom);
        Eot = eot ?? FirstPresent(EotTexts);

        var special = new List<int>();
        for (int id = 0; id < n; id++)
        {
            if ((attrs[id] & (TokenAttr.Control | TokenAttr.UserDefined | TokenAttr.Unknown)) != 0)
            {
                special.Add(id);
            }
        }
        specialTokens = special
            .OrderByDescending(id => Encoding.UTF8.GetByteCount(tokens[id]))
            .ThenBy(id => id)
            .ToArray();

        if (isSpm)
        {
            spm = new SpmMerger(tokenToId, scores, ByteToTokenSpm);
        }

        pieces = new byte[n][];
        for (int id = 0; id < n; id++)
        {
            pieces[id] = BuildPiece(id);
        }
    }

    /// <summary><c>tokenizer.ggml.model</c>: "gpt2" or "llama".</summary>
    public string Model { get; }

    /// <summary><c>tokenizer.ggml.pre</c> as given (null: absent).</summary>
    public string? Pre { get; }

    public bool IsSentencePiece { get; }

    public int VocabSize => tokens.Length;

    public int? Bos { get; }

    public int? Eos { get; }

    /// <summary>End of turn (e.g. &lt;|im_end|&gt;), from the metadata or found by its text as llama.cpp does.</summary>
    public int? Eot { get; }

    public int? Unknown { get; }

    public bool AddBos { get; }

    public bool AddEos { get; }

    public bool AddSpacePrefix { get; }

    /// <summary>Every token that ends generation: EOS, EOT, EOM and the end-like tokens llama.cpp recognises by text.</summary>
    public IReadOnlyCollection<int> EndOfGenerationTokens => endOfGeneration;

    public bool IsEndOfGeneration(int id) => endOfGeneration.Contains(id);

    /// <summary>Whether <c>tokenizer.ggml.add_bos_token</c> defaults to true when absent (llama.cpp: SPM and Llama-3 BPE).</summary>
    public static bool DefaultAddBos(string model, string? pre) =>
        model == "llama" || (model == "gpt2" && pre is not null && PreTokenizer.IsSupported(pre) && PreTokenizer.ForName(pre).IgnoreMerges);

    public static IReadOnlyList<string> SupportedPreTokenizers => PreTokenizer.SupportedNames;

    /// <summary>Builds a tokenizer from the <c>tokenizer.ggml.*</c> arrays of a GGUF file.</summary>
    public static Tokenizer Create(string model, string? pre, string[] tokens, float[]? scores, int[]? tokenTypes,
        string[]? merges, int? bos, int? eos, bool addBos) =>
        Create(model, pre, tokens, scores, tokenTypes, merges, new TokenizerSettings { Bos = bos, Eos = eos, AddBos = addBos });

    /// <summary>Builds a tokenizer from the <c>tokenizer.ggml.*</c> arrays and scalars of a GGUF file.</summary>
    public static Tokenizer Create(string model, string? pre, string[] tokens, float[]? scores, int[]? tokenTypes,
        string[]? merges, TokenizerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(settings);
        bool isSpm = model switch
        {
            "llama" => true,
            "gpt2" => false,
            _ => throw new InvalidDataException(
                $"tokenizer.ggml.model = '{model}' is not supported; supported: 'gpt2' (byte-level BPE), 'llama' (SentencePiece)"),
        };
        if (tokens is null || tokens.Length == 0)
        {
            throw new InvalidDataException("tokenizer.ggml.tokens is missing or empty");
        }
        int n = tokens.Length;
        if (scores is not null && scores.Length < n)
        {
            throw new InvalidDataException($"tokenizer.ggml.scores has {scores.Length} entries for {n} tokens");
        }
        if (tokenTypes is not null && tokenTypes.Length < n)
        {
            throw new InvalidDataException($"tokenizer.ggml.token_type has {tokenTypes.Length} entries for {n} tokens");
        }

        var texts = new string[n];
        var attrs = new TokenAttr[n];
        var tokenToId = new Dictionary<string, int>(n, StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            string? t = tokens[i] ?? throw new InvalidDataException($"tokenizer.ggml.tokens[{i}] is null");
            if (t.Length == 0)
            {
                t = $"[EMPTY_{i}]"; // llama.cpp's name for an empty token, so it stays addressable
            }
            if (!tokenToId.TryAdd(t, i))
            {
                throw new InvalidDataException(
                    $"tokenizer.ggml.tokens[{i}] = '{t}' duplicates tokenizer.ggml.tokens[{tokenToId[t]}]");
            }
            texts[i] = t;
            attrs[i] = tokenTypes is null ? TokenAttr.Normal : (TokenType)tokenTypes[i] switch
            {
                TokenType.Unknown => TokenAttr.Unknown,
                TokenType.Unused => TokenAttr.Unused,
                TokenType.Normal => TokenAttr.Normal,
                TokenType.Control => TokenAttr.Control,
                TokenType.UserDefined => TokenAttr.UserDefined,
                TokenType.Byte => TokenAttr.Byte,
                _ => TokenAttr.Undefined,
            };
        }

        PreTokenizer? preTokenizer = null;
        BpeMerger? bpe = null;
        if (!isSpm)
        {
            preTokenizer = PreTokenizer.ForName(pre);
            if (merges is null)
            {
                throw new InvalidDataException("tokenizer.ggml.merges is missing; a 'gpt2' (BPE) tokenizer needs it");
            }
            bpe = new BpeMerger(merges);
        }

        return new Tokenizer(model, pre, texts, attrs, scores?.ToArray() ?? new float[n], tokenToId, preTokenizer, bpe,
            settings, isSpm);
    }

    private static int? ResolveId(string key, int? given, int? fallback, int n)
    {
        if (given is int id)
        {
            if (id < 0 || id >= n)
            {
                throw new InvalidDataException($"{key} = {id} is outside the vocabulary of {n} tokens");
            }
            return id;
        }
        return fallback is int f && f < n ? f : null;
    }

    // Texts llama.cpp treats as end of turn / end of generation (llama-vocab.cpp, "auto-detect special tokens").
    private static readonly string[] EotTexts =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>",
        "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>",
    ];

    private static readonly string[] EogTexts =
    [
        "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
        "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>",
        "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>",
    ];

    // Fill-in-the-middle padding/repo/file separators also stop generation in llama.cpp.
    private static readonly string[] FimEogTexts =
    [
        "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
        "<reponame>", "<|file_sep|>",
    ];

    private static readonly string[] FimControlTexts =
    [
        "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>",
        "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>",
        "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>",
        "<|eom_id|>",
    ];

    private int? FirstPresent(string[] texts)
    {
        foreach (var t in texts)
        {
            if (tokenToId.TryGetValue(t, out int id))
            {
                return id;
            }
        }
        return null;
    }

    private HashSet<int> FindEndOfGeneration(int? eot, int? eom)
    {
        var eog = new HashSet<int>();
        // End-like tokens are control tokens even when a converter typed them otherwise (llama.cpp overrides too).
        foreach (var t in EotTexts.Concat(FimControlTexts))
        {
            if (tokenToId.TryGetValue(t, out int id))
            {
                attrs[id] |= TokenAttr.Control;
            }
        }
        foreach (var t in EogTexts.Concat(FimEogTexts))
        {
            if (tokenToId.TryGetValue(t, out int id))
            {
                eog.Add(id);
                attrs[id] |= TokenAttr.Control;
            }
        }
        // o200k_harmony / solar-open: <|end|> ends a message, not the generation, when <|return|> and <|call|> exist.
        if (tokenToId.TryGetValue("<|end|>", out int end)
            && ((tokenToId.ContainsKey("<|return|>") && tokenToId.ContainsKey("<|call|>"))
                || (tokenToId.ContainsKey("<|calls|>") && tokenToId.ContainsKey("<|flush|>"))))
        {
            eog.Remove(end);
            attrs[end] = TokenAttr.UserDefined;
        }
        if (tokenToId.TryGetValue("<|tool_response>", out _) && tokenToId.TryGetValue("</s>", out int s))
        {
            eog.Remove(s);
            attrs[s] = TokenAttr.Normal;
        }
        foreach (int? id in new[] { Eos, eot, eom })
        {
            if (id is int v)
            {
                eog.Add(v);
            }
        }
        return eog;
    }

    private int ByteToTokenSpm(byte b)
    {
        if (tokenToId.TryGetValue($"<0x{b:X2}>", out int id))
        {
            return id;
        }
        if (b < 0x80 && tokenToId.TryGetValue(((char)b).ToString(), out id))
        {
            return id;
        }
        return Unknown ?? throw new InvalidDataException(
            $"the SentencePiece vocabulary has no byte token <0x{b:X2}> and no unknown token to stand for it");
    }

    /// <summary>The text of a token as stored in the vocabulary (byte-level or "▁" encoded).</summary>
    public string TokenText(int id)
    {
        CheckId(id);
        return tokens[id];
    }

    public TokenType GetTokenType(int id)
    {
        CheckId(id);
        var a = attrs[id];
        return (a & TokenAttr.Byte) != 0 ? TokenType.Byte
            : (a & TokenAttr.Unused) != 0 ? TokenType.Unused
            : (a & TokenAttr.Control) != 0 ? TokenType.Control
            : (a & TokenAttr.UserDefined) != 0 ? TokenType.UserDefined
            : (a & TokenAttr.Unknown) != 0 ? TokenType.Unknown
            : (a & TokenAttr.Normal) != 0 ? TokenType.Normal
            : TokenType.Undefined;
    }

    public float Score(int id)
    {
        CheckId(id);
        return scores[id];
    }

    /// <summary>The id of a vocabulary string, if present.</summary>
    public int? TokenId(string text) => tokenToId.TryGetValue(text, out int id) ? id : null;

    /// <summary>The bytes a token stands for (a piece may be part of a UTF-8 character).</summary>
    public ReadOnlySpan<byte> PieceBytes(int id, bool renderSpecial = true)
    {
        CheckId(id);
        if (!renderSpecial && (attrs[id] & (TokenAttr.Control | TokenAttr.Unknown)) != 0)
        {
            return default;
        }
        return pieces[id];
    }

    private void CheckId(int id)
    {
        if ((uint)id >= (uint)tokens.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id outside the vocabulary of {tokens.Length} tokens");
        }
    }

    // llama.cpp token_to_piece with special = true.
    private byte[] BuildPiece(int id)
    {
        var a = attrs[id];
        string text = tokens[id];
        if ((a & (TokenAttr.Control | TokenAttr.Unknown | TokenAttr.UserDefined)) != 0)
        {
            return Encoding.UTF8.GetBytes(text);
        }
        if ((a & TokenAttr.Normal) != 0)
        {
            if (IsSentencePiece)
            {
                return Encoding.UTF8.GetBytes(text.Replace(SpmSpace, ' '));
            }
            var bytes = new List<byte>(text.Length);
            Span<byte> buf = stackalloc byte[4];
            foreach (var rune in text.EnumerateRunes())
            {
                if (rune.IsBmp && ByteLevelEncoding.TryDecode((char)rune.Value, out byte b))
                {
                    bytes.Add(b);
                }
                else
                {
                    // Not a byte-level char (a hand-added token); llama.cpp prints a marker, we keep the character.
                    int len = rune.EncodeToUtf8(buf);
                    for (int k = 0; k < len; k++)
                    {
                        bytes.Add(buf[k]);
                    }
                }
            }
            return bytes.ToArray();
        }
        if ((a & TokenAttr.Byte) != 0)
        {
            if (text.Length == 6 && text.StartsWith("<0x", StringComparison.Ordinal) && text[5] == '>'
                && byte.TryParse(text.AsSpan(3, 2), System.Globalization.NumberStyles.AllowHexSpecifier,
                    System.Globalization.CultureInfo.InvariantCulture, out byte value))
            {
                return [value];
            }
            throw new InvalidDataException($"tokenizer.ggml.tokens[{id}] = '{text}' has type BYTE but is not of the form <0xHH>");
        }
        return []; // unused / undefined tokens print nothing
    }

    /// <summary>
    /// Encodes text as llama.cpp's llama_tokenize does. <paramref name="addSpecial"/> adds BOS/EOS as the model asks;
    /// <paramref name="parseSpecial"/> lets control tokens written in the text (e.g. &lt;|im_start|&gt;) become those tokens.
    /// </summary>
    public int[] Encode(string text, bool addSpecial = true, bool parseSpecial = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = UnicodeClass.Sanitize(text);
        var output = new List<int>(text.Length / 3 + 4);
        var fragments = Partition(text, parseSpecial);

        if (addSpecial && AddBos)
        {
            output.Add(Bos!.Value);
        }
        bool prevSpecial = true; // SentencePiece prefixes a space to text at the start and after a special token
        var words = new List<string>();
        foreach (var f in fragments)
        {
            if (f.Token >= 0)
            {
                output.Add(f.Token);
                prevSpecial = true;
                continue;
            }
            if (IsSentencePiece)
            {
                var sb = new StringBuilder(f.Length + 1);
                if (AddSpacePrefix && prevSpecial)
                {
                    sb.Append(' ');
                }
                sb.Append(text, f.Start, f.Length).Replace(' ', SpmSpace);
                spm!.Encode(sb.ToString(), output);
                prevSpecial = false;
            }
            else
            {
                EncodeBpe(text.AsSpan(f.Start, f.Length), output, words);
            }
        }
        if (addSpecial && AddEos)
        {
            output.Add(Eos!.Value);
        }
        return output.ToArray();
    }

    private void EncodeBpe(ReadOnlySpan<char> fragment, List<int> output, List<string> words)
    {
        int[] cps = UnicodeClass.CodePoints(fragment);
        var lengths = preTokenizer!.Split(cps);
        var word = new StringBuilder();
        Span<byte> utf8 = stackalloc byte[4];
        int start = 0;
        foreach (int len in lengths)
        {
            word.Clear();
            for (int i = start; i < start + len; i++)
            {
                int n = new Rune(cps[i]).EncodeToUtf8(utf8);
                for (int k = 0; k < n; k++)
                {
                    word.Append(ByteLevelEncoding.Encode(utf8[k]));
                }
            }
            start += len;
            string w = word.ToString();
            if (preTokenizer.IgnoreMerges && tokenToId.TryGetValue(w, out int whole))
            {
                output.Add(whole);
                continue;
            }
            words.Clear();
            bpe!.Merge(w, words);
            foreach (var symbol in words)
            {
                if (tokenToId.TryGetValue(symbol, out int id))
                {
                    output.Add(id);
                    continue;
                }
                // A merge produced a string the vocabulary lacks (malformed merges): fall back to its single chars.
                foreach (char c in symbol)
                {
                    if (tokenToId.TryGetValue(c.ToString(), out int single))
                    {
                        output.Add(single);
                    }
                }
            }
        }
    }

    private readonly record struct Fragment(int Token, int Start, int Length);

    // llama.cpp tokenizer_st_partition: cut the text at each occurrence of each special token, longest token first.
    private List<Fragment> Partition(string text, bool parseSpecial)
    {
        var fragments = new List<Fragment>();
        if (text.Length == 0)
        {
            return fragments;
        }
        fragments.Add(new Fragment(-1, 0, text.Length));
        var next = new List<Fragment>();
        foreach (int id in specialTokens)
        {
            if (!parseSpecial && (attrs[id] & (TokenAttr.Control | TokenAttr.Unknown)) != 0)
            {
                continue; // user-defined tokens are still matched, as in Hugging Face tokenizers
            }
            string special = tokens[id];
            bool any = false;
            next.Clear();
            foreach (var f in fragments)
            {
                if (f.Token >= 0)
                {
                    next.Add(f);
                    continue;
                }
                int pos = f.Start;
                int end = f.Start + f.Length;
                while (pos < end)
                {
                    int match = text.IndexOf(special, pos, end - pos, StringComparison.Ordinal);
                    if (match < 0)
                    {
                        break;
                    }
                    any = true;
                    if (match > pos)
                    {
                        next.Add(new Fragment(-1, pos, match - pos));
                    }
                    next.Add(new Fragment(id, match, special.Length));
                    pos = match + special.Length;
                }
                if (pos < end)
                {
                    next.Add(new Fragment(-1, pos, end - pos));
                }
            }
            if (any)
            {
                (fragments, next) = (next, fragments);
            }
        }
        return fragments;
    }

    /// <summary>
    /// Decodes tokens to text: the BOS the model adds is dropped and SentencePiece's added leading space removed, so
    /// <c>Decode(Encode(s)) == s</c>; other special tokens print their text. Invalid UTF-8 becomes U+FFFD.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var bytes = new List<byte>(ids.Length * 4);
        int i = 0;
        if (AddBos && ids.Length > 0 && ids[0] == Bos)
        {
            i = 1;
        }
        bool first = true;
        for (; i < ids.Length; i++)
        {
            var piece = PieceBytes(ids[i]);
            if (first && AddSpacePrefix && piece.Length > 0 && piece[0] == (byte)' ')
            {
                piece = piece[1..];
            }
            first = false;
            foreach (byte b in piece)
            {
                bytes.Add(b);
            }
        }
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>A decoder for streaming output: feed tokens one by one, get complete characters back.</summary>
    public StreamingDecoder CreateDecoder(bool renderSpecial = false) => new(this, renderSpecial);
}
