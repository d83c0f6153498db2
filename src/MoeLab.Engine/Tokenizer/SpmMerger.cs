using System.Text;

namespace MoeLab.Engine.Tokenizer;

/// <summary>
/// SentencePiece BPE as llama.cpp runs it (llm_tokenizer_spm_session): start from single characters, repeatedly
/// merge the adjacent pair whose concatenation is the vocabulary token with the highest score (ties: leftmost),
/// then emit each symbol as its token, or re-split it along the merges that built it, or as byte tokens.
/// </summary>
internal sealed class SpmMerger(Dictionary<string, int> tokenToId, float[] scores, Func<byte, int> byteToToken)
{
    private struct Symbol
    {
        public int Start;
        public int Length;
        public int Prev;
        public int Next;
    }

    private readonly record struct Bigram(int Left, int Right, int Size);

    private sealed class HighScoreFirst : IComparer<(float Score, int Left)>
    {
        public static readonly HighScoreFirst Instance = new();

        public int Compare((float Score, int Left) a, (float Score, int Left) b)
        {
            int c = b.Score.CompareTo(a.Score);
            return c != 0 ? c : a.Left.CompareTo(b.Left);
        }
    }

    public void Encode(string text, List<int> output)
    {
        if (text.Length == 0)
        {
            return;
        }
        var symbols = new List<Symbol>(text.Length);
        for (int i = 0; i < text.Length;)
        {
            int len = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            int index = symbols.Count;
            symbols.Add(new Symbol { Start = i, Length = len, Prev = index - 1, Next = i + len < text.Length ? index + 1 : -1 });
            i += len;
        }
        var syms = symbols.ToArray();
        var queue = new PriorityQueue<Bigram, (float, int)>(HighScoreFirst.Instance);
        var revMerge = new Dictionary<string, (int Left, int Right)>(StringComparer.Ordinal);
        for (int i = 1; i < syms.Length; i++)
        {
            TryAdd(text, syms, queue, revMerge, i - 1, i);
        }
        while (queue.TryDequeue(out var bigram, out _))
        {
            ref var left = ref syms[bigram.Left];
            ref var right = ref syms[bigram.Right];
            if (left.Length == 0 || right.Length == 0 || left.Length + right.Length != bigram.Size)
            {
                continue;
            }
            left.Length += right.Length;
            right.Length = 0;
            left.Next = right.Next;
            if (right.Next >= 0)
            {
                syms[right.Next].Prev = bigram.Left;
            }
            TryAdd(text, syms, queue, revMerge, left.Prev, bigram.Left);
            TryAdd(text, syms, queue, revMerge, bigram.Left, left.Next);
        }
        for (int i = 0; i != -1; i = syms[i].Next)
        {
            Resegment(text, syms, revMerge, i, output, depth: 0);
        }
    }

    private void TryAdd(string text, Symbol[] syms, PriorityQueue<Bigram, (float, int)> queue,
        Dictionary<string, (int, int)> revMerge, int left, int right)
    {
        if (left < 0 || right < 0)
        {
            return;
        }
        int size = syms[left].Length + syms[right].Length;
        string s = text.Substring(syms[left].Start, size);
        if (!tokenToId.TryGetValue(s, out int id))
        {
            return;
        }
        queue.Enqueue(new Bigram(left, right, size), (scores[id], left));
        revMerge[s] = (left, right);
    }

    private void Resegment(string text, Symbol[] syms, Dictionary<string, (int Left, int Right)> revMerge,
        int index, List<int> output, int depth)
    {
        var sym = syms[index];
        string s = text.Substring(sym.Start, sym.Length);
        if (tokenToId.TryGetValue(s, out int id))
        {
            output.Add(id);
            return;
        }
        // depth guards a malformed vocabulary whose merge records could point back at themselves
        if (depth < 64 && revMerge.TryGetValue(s, out var parts))
        {
            Resegment(text, syms, revMerge, parts.Left, output, depth + 1);
            Resegment(text, syms, revMerge, parts.Right, output, depth + 1);
            return;
        }
        foreach (byte b in Encoding.UTF8.GetBytes(s))
        {
            output.Add(byteToToken(b));
        }
    }
}
