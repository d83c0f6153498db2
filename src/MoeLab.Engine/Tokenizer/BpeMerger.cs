namespace MoeLab.Engine.Tokenizer;

/// <summary>
/// Byte-level BPE (GPT-2): within one pre-tokenized word, repeatedly merge the adjacent pair with the lowest merge
/// rank (ties: leftmost) until no ranked pair remains (llama.cpp llm_tokenizer_bpe_session).
/// </summary>
internal sealed class BpeMerger
{
    private readonly Dictionary<(string Left, string Right), int> ranks;

    public BpeMerger(string[] merges)
    {
        ranks = new Dictionary<(string, string), int>(merges.Length);
        for (int i = 0; i < merges.Length; i++)
        {
            string m = merges[i] ?? throw new InvalidDataException($"tokenizer.ggml.merges[{i}] is null");
            // Split at the first space after position 0, as llama.cpp does; a merge without one is never applicable.
            int sp = m.Length > 1 ? m.IndexOf(' ', 1) : -1;
            if (sp < 0)
            {
                throw new InvalidDataException($"tokenizer.ggml.merges[{i}] = '{m}' is not two symbols separated by a space");
            }
            ranks.TryAdd((m[..sp], m[(sp + 1)..]), i);
        }
    }

    public int Count => ranks.Count;

    private struct Symbol
    {
        public int Start;
        public int Length;
        public int Prev;
        public int Next;
    }

    private readonly record struct Bigram(int Left, int Right, int Size);

    /// <summary>Merges <paramref name="word"/> (already byte-encoded) and appends the final symbols' strings.</summary>
    public void Merge(string word, List<string> output)
    {
        if (word.Length == 0)
        {
            return;
        }
        // Byte-level words are BMP-only (U+0021..U+0143), so one char is one initial symbol.
        var symbols = new Symbol[word.Length];
        for (int i = 0; i < word.Length; i++)
        {
            symbols[i] = new Symbol { Start = i, Length = 1, Prev = i - 1, Next = i + 1 < word.Length ? i + 1 : -1 };
        }
        var queue = new PriorityQueue<Bigram, (int Rank, int Left)>();
        for (int i = 1; i < symbols.Length; i++)
        {
            TryAdd(word, symbols, queue, i - 1, i);
        }
        while (queue.TryDequeue(out var bigram, out _))
        {
            ref var left = ref symbols[bigram.Left];
            ref var right = ref symbols[bigram.Right];
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != bigram.Size)
            {
                continue; // outdated: one side has merged since this pair was queued
            }
            left.Length += right.Length;
            right.Length = 0;
            left.Next = right.Next;
            if (right.Next >= 0)
            {
                symbols[right.Next].Prev = bigram.Left;
            }
            TryAdd(word, symbols, queue, left.Prev, bigram.Left);
            TryAdd(word, symbols, queue, bigram.Left, left.Next);
        }
        for (int i = 0; i != -1; i = symbols[i].Next)
        {
            output.Add(word.Substring(symbols[i].Start, symbols[i].Length));
        }
    }

    private void TryAdd(string word, Symbol[] symbols, PriorityQueue<Bigram, (int, int)> queue, int left, int right)
    {
        if (left < 0 || right < 0)
        {
            return;
        }
        var l = symbols[left];
        var r = symbols[right];
        if (ranks.TryGetValue((word.Substring(l.Start, l.Length), word.Substring(r.Start, r.Length)), out int rank))
        {
            queue.Enqueue(new Bigram(left, right, l.Length + r.Length), (rank, left));
        }
    }
}
