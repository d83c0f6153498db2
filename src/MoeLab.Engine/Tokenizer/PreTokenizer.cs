using System.Text;
using System.Text.RegularExpressions;

namespace MoeLab.Engine.Tokenizer;

/// <summary>
/// Splits text into words before BPE merges, as the model's tokenizer.json regex does. Each stage refines the
/// previous stage's segments (llama.cpp unicode_regex_split). The common regexes are hand-written scanners over code
/// points (exactly the regex, and no UTF-16 surrogate pitfalls); the rest run as a regex over a "collapsed" text where
/// each non-ASCII code point is replaced by one character standing for its class, as llama.cpp does.
/// </summary>
internal sealed class PreTokenizer
{
    private readonly IStage[] stages;

    private PreTokenizer(string name, bool ignoreMerges, params IStage[] stages)
    {
        Name = name;
        IgnoreMerges = ignoreMerges;
        this.stages = stages;
    }

    public string Name { get; }

    /// <summary>Llama-3 style vocabularies take a whole word that is itself a token without running merges.</summary>
    public bool IgnoreMerges { get; }

    public static IReadOnlyList<string> SupportedNames => Families.Keys.Order(StringComparer.Ordinal).ToArray();

    // tokenizer.ggml.pre values llama.cpp accepts for each splitting scheme (llama-vocab.cpp, impl::load).
    private static readonly Dictionary<string, Func<PreTokenizer>> Families = BuildFamilies();

    private const string Gpt2Regex = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";

    private static Dictionary<string, Func<PreTokenizer>> BuildFamilies()
    {
        var d = new Dictionary<string, Func<PreTokenizer>>(StringComparer.Ordinal);
        void Add(Func<string, PreTokenizer> make, params string[] names)
        {
            foreach (var n in names)
            {
                d[n] = () => make(n);
            }
        }

        Add(n => new PreTokenizer(n, false, new Gpt2Stage()),
            "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
            "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "trillion", "granite-docling");
        Add(n => new PreTokenizer(n, false, new Qwen2Stage(maxDigits: 1, marksJoinLetters: false)),
            "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "hunyuan", "solar-open", "grok-2");
        Add(n => new PreTokenizer(n, false, new Qwen2Stage(maxDigits: 1, marksJoinLetters: true)), "qwen35");
        Add(n => new PreTokenizer(n, true, new Qwen2Stage(maxDigits: 3, marksJoinLetters: false)),
            "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano");
        Add(n => new PreTokenizer(n, false, new Qwen2Stage(maxDigits: 3, marksJoinLetters: false)), "dbrx", "smaug-bpe");
        Add(n => new PreTokenizer(n, false,
                new RegexStage(@"[\p{P}\$\+<=>\^~\|]+"), new Gpt2Stage(), new RegexStage(@"\p{N}+"), new RegexStage("[0-9][0-9][0-9]")),
            "default");
        Add(n => new PreTokenizer(n, false, new RegexStage(@"\p{N}"), new Gpt2Stage()),
            "starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2");
        Add(n => new PreTokenizer(n, false,
                new RegexStage(@"[\p{P}\$\+<=>\^~\|`]+"), new Gpt2Stage(), new RegexStage("[0-9][0-9][0-9]")),
            "falcon");
        return d;
    }

    /// <summary>A pre-tokenizer running the given regexes in turn (the reference the scanners are tested against).</summary>
    internal static PreTokenizer FromRegexes(params string[] regexes) =>
        new("regex", false, regexes.Select(r => (IStage)new RegexStage(r)).ToArray());

    public static bool IsSupported(string name) => Families.ContainsKey(name);

    /// <summary>The pre-tokenizer for a <c>tokenizer.ggml.pre</c> value; null or empty means llama.cpp's "default".</summary>
    public static PreTokenizer ForName(string? pre)
    {
        string name = string.IsNullOrEmpty(pre) ? "default" : pre;
        if (!Families.TryGetValue(name, out var make))
        {
            throw new InvalidDataException(
                $"tokenizer.ggml.pre = '{name}' is not a supported pre-tokenizer; supported: {string.Join(", ", SupportedNames)}");
        }
        return make();
    }

    /// <summary>Word lengths in code points, in order, covering all of <paramref name="cps"/>.</summary>
    public List<int> Split(int[] cps)
    {
        var offsets = new List<int>();
        if (cps.Length == 0)
        {
            return offsets;
        }
        offsets.Add(cps.Length);
        string? collapsed = null;
        foreach (var stage in stages)
        {
            var next = new List<int>(offsets.Count * 2);
            int start = 0;
            foreach (int len in offsets)
            {
                if (stage is RegexStage rs)
                {
                    collapsed ??= Collapse(cps);
                    rs.Split(collapsed, start, len, next);
                }
                else
                {
                    ((ScannerStage)stage).Split(cps, start, start + len, next);
                }
                start += len;
            }
            offsets = next;
        }
        return offsets;
    }

    private interface IStage;

    private abstract class ScannerStage : IStage
    {
        /// <summary>Appends the lengths of the words of cps[ini..end).</summary>
        public abstract void Split(int[] cps, int ini, int end, List<int> output);
    }

    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    private sealed class Gpt2Stage : ScannerStage
    {
        public override void Split(int[] cps, int ini, int end, List<int> output)
        {
            int pos = ini;
            while (pos < end)
            {
                int start = pos;
                int cpt = cps[pos];
                if (cpt == '\'' && pos + 1 < end)
                {
                    int n1 = cps[pos + 1];
                    if (n1 is 's' or 't' or 'm' or 'd')
                    {
                        output.Add(2);
                        pos += 2;
                        continue;
                    }
                    if (pos + 2 < end)
                    {
                        int n2 = cps[pos + 2];
                        if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l'))
                        {
                            output.Add(3);
                            pos += 3;
                            continue;
                        }
                    }
                }

                int p2 = cpt == ' ' ? pos + 1 : pos;
                if (p2 < end)
                {
                    int c2 = cps[p2];
                    if (UnicodeClass.IsLetter(c2))
                    {
                        pos = p2;
                        while (pos < end && UnicodeClass.IsLetter(cps[pos])) pos++;
                        output.Add(pos - start);
                        continue;
                    }
                    if (UnicodeClass.IsNumber(c2))
                    {
                        pos = p2;
                        while (pos < end && UnicodeClass.IsNumber(cps[pos])) pos++;
                        output.Add(pos - start);
                        continue;
                    }
                    if (!UnicodeClass.IsWhitespace(c2))
                    {
                        pos = p2;
                        while (pos < end && IsOther(cps[pos])) pos++;
                        output.Add(pos - start);
                        continue;
                    }
                }

                int ws = 0;
                while (pos + ws < end && UnicodeClass.IsWhitespace(cps[pos + ws])) ws++;
                if (ws > 1 && pos + ws < end)
                {
                    pos += ws - 1; // \s+(?!\S): leave the last space to prefix the next word
                }
                else if (ws > 0)
                {
                    pos += ws;
                }
                else
                {
                    pos++;
                }
                output.Add(pos - start);
            }
        }

        private static bool IsOther(int cp) => !UnicodeClass.IsWhitespace(cp) && !UnicodeClass.IsLetter(cp) && !UnicodeClass.IsNumber(cp);
    }

    // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,maxDigits}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
    // Qwen3.5 (marksJoinLetters) reads \p{L} as [\p{L}\p{M}] in the letter runs and the punctuation class.
    private sealed class Qwen2Stage(int maxDigits, bool marksJoinLetters) : ScannerStage
    {
        private bool IsWordChar(int cp) => UnicodeClass.IsLetter(cp) || (marksJoinLetters && UnicodeClass.IsMark(cp));

        private bool IsOther(int cp) =>
            !UnicodeClass.IsWhitespace(cp) && !UnicodeClass.IsNumber(cp) && !IsWordChar(cp);

        public override void Split(int[] cps, int ini, int end, List<int> output)
        {
            int pos = ini;
            while (pos < end)
            {
                int start = pos;
                int cpt = cps[pos];
                if (cpt == '\'' && pos + 1 < end)
                {
                    int n1 = AsciiLower(cps[pos + 1]);
                    if (n1 is 's' or 't' or 'm' or 'd')
                    {
                        output.Add(2);
                        pos += 2;
                        continue;
                    }
                    if (pos + 2 < end)
                    {
                        int n2 = AsciiLower(cps[pos + 2]);
                        if ((n1 == 'r' && n2 == 'e') || (n1 == 'v' && n2 == 'e') || (n1 == 'l' && n2 == 'l'))
                        {
                            output.Add(3);
                            pos += 3;
                            continue;
                        }
                    }
                }

                bool isNumber = UnicodeClass.IsNumber(cpt);
                if (!(cpt == '\r' || cpt == '\n' || isNumber))
                {
                    if (IsWordChar(cpt) || (pos + 1 < end && IsWordChar(cps[pos + 1])))
                    {
                        pos++;
                        while (pos < end && IsWordChar(cps[pos])) pos++;
                        output.Add(pos - start);
                        continue;
                    }
                }

                if (isNumber)
                {
                    int groupStart = pos;
                    while (pos < end && UnicodeClass.IsNumber(cps[pos]))
                    {
                        pos++;
                        if (pos - groupStart >= maxDigits)
                        {
                            output.Add(pos - groupStart);
                            groupStart = pos;
                        }
                    }
                    if (pos > groupStart)
                    {
                        output.Add(pos - groupStart);
                    }
                    continue;
                }

                // <space>?[^\s\p{L}\p{N}]+[\r\n]* ; a lone trailing space also lands here (llama.cpp scanner).
                int p2 = cpt == ' ' ? pos + 1 : pos;
                if (p2 >= end || IsOther(cps[p2]))
                {
                    pos = p2;
                    while (pos < end && IsOther(cps[pos])) pos++;
                    while (pos < end && cps[pos] is '\r' or '\n') pos++;
                    output.Add(pos - start);
                    continue;
                }

                int ws = 0;
                int lastLineEnd = -1;
                while (pos + ws < end && UnicodeClass.IsWhitespace(cps[pos + ws]))
                {
                    if (cps[pos + ws] is '\r' or '\n')
                    {
                        lastLineEnd = pos + ws + 1;
                    }
                    ws++;
                }
                if (lastLineEnd > 0)
                {
                    pos = lastLineEnd; // \s*[\r\n]+
                }
                else if (ws > 1 && pos + ws < end)
                {
                    pos += ws - 1; // \s+(?!\S)
                }
                else if (ws > 0)
                {
                    pos += ws;
                }
                else
                {
                    pos++;
                }
                output.Add(pos - start);
            }
        }

        private static int AsciiLower(int cp) => cp is >= 'A' and <= 'Z' ? cp + 32 : cp;
    }

    /// <summary>A regex run over the collapsed text (one char per code point), like llama.cpp's std::regex fallback.</summary>
    private sealed class RegexStage : IStage
    {
        private readonly Regex regex;

        public RegexStage(string pattern)
        {
            regex = new Regex(CollapsePattern(pattern), RegexOptions.CultureInvariant | RegexOptions.ECMAScript);
        }

        public void Split(string collapsed, int start, int length, List<int> output)
        {
            int done = 0;
            for (var m = regex.Match(collapsed, start, length); m.Success; m = m.NextMatch())
            {
                if (m.Length == 0)
                {
                    continue;
                }
                int rel = m.Index - start;
                if (rel > done)
                {
                    output.Add(rel - done);
                }
                output.Add(m.Length);
                done = rel + m.Length;
            }
            if (done < length)
            {
                output.Add(length - done);
            }
        }
    }

    private const char CollapsedNumber = '\u00D1';
    private const char CollapsedLetter = '\u00D2';
    private const char CollapsedPunctuation = '\u00D3';
    private const char CollapsedMark = '\u00D4';
    private const char CollapsedSymbol = '\u00D5';
    private const char CollapsedOther = '\u00D0';

    internal static string Collapse(int[] cps)
    {
        var chars = new char[cps.Length];
        for (int i = 0; i < cps.Length; i++)
        {
            int cp = cps[i];
            if (cp < 128)
            {
                chars[i] = (char)cp;
            }
            else if (UnicodeClass.IsWhitespace(cp))
            {
                chars[i] = '\v';
            }
            else
            {
                chars[i] = UnicodeClass.Category(cp) switch
                {
                    >= System.Globalization.UnicodeCategory.UppercaseLetter and <= System.Globalization.UnicodeCategory.OtherLetter => CollapsedLetter,
                    >= System.Globalization.UnicodeCategory.NonSpacingMark and <= System.Globalization.UnicodeCategory.EnclosingMark => CollapsedMark,
                    >= System.Globalization.UnicodeCategory.DecimalDigitNumber and <= System.Globalization.UnicodeCategory.OtherNumber => CollapsedNumber,
                    >= System.Globalization.UnicodeCategory.ConnectorPunctuation and <= System.Globalization.UnicodeCategory.OtherPunctuation => CollapsedPunctuation,
                    >= System.Globalization.UnicodeCategory.MathSymbol and <= System.Globalization.UnicodeCategory.OtherSymbol => CollapsedSymbol,
                    _ => CollapsedOther,
                };
            }
        }
        return new string(chars);
    }

    // \p{X} becomes the collapsed class char plus the ASCII members of X (llama.cpp k_ucat_map).
    private static string ClassMembers(string property) => property switch
    {
        "N" => CollapsedNumber + "0-9",
        "L" or "Lu" or "Ll" or "Lt" or "Lm" or "Lo" => CollapsedLetter + "A-Za-z",
        "P" => CollapsedPunctuation + @"!-#%-*,-/:-;?-@\[-\]_\{\}",
        "M" => CollapsedMark.ToString(),
        "S" => CollapsedSymbol + @"\$\+<->\^`\|",
        _ => throw new InvalidDataException($"pre-tokenizer regex uses unsupported class \\p{{{property}}}"),
    };

    internal static string CollapsePattern(string pattern)
    {
        var sb = new StringBuilder(pattern.Length * 2);
        bool inside = false;
        for (int i = 0; i < pattern.Length; i++)
        {
            char c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length && pattern[i + 1] != 'p')
            {
                sb.Append(c).Append(pattern[i + 1]);
                i++;
                continue;
            }
            if (c == '[' && !inside)
            {
                inside = true;
                sb.Append(c);
                continue;
            }
            if (c == ']' && inside)
            {
                inside = false;
                sb.Append(c);
                continue;
            }
            if (c == '\\' && i + 2 < pattern.Length && pattern[i + 1] == 'p' && pattern[i + 2] == '{')
            {
                int close = pattern.IndexOf('}', i + 3);
                string members = ClassMembers(pattern[(i + 3)..close]);
                sb.Append(inside ? members : "[" + members + "]");
                i = close;
                continue;
            }
            sb.Append(c);
        }
        return sb.ToString();
    }
}
