namespace MoeLab.Engine.Sampling;

/// <summary>
/// Picks the next token from logits: greedy, or temperature → top-k → top-p (Hugging Face's warper order) → a draw
/// from the seeded generator. All buffers are allocated once for the vocabulary size; <see cref="Sample"/> allocates
/// nothing.
/// </summary>
public sealed class Sampler
{
    private readonly int vocabSize;
    private readonly int[] candidates;
    private readonly float[] keys;
    private readonly double[] weights;
    private Xoshiro256StarStar rng;

    public Sampler(int vocabSize, SamplerOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabSize, 1);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.vocabSize = vocabSize;
        Options = options;
        candidates = new int[vocabSize];
        keys = new float[vocabSize];
        weights = new double[vocabSize];
        rng = new Xoshiro256StarStar(options.Seed);
    }

    public SamplerOptions Options { get; }

    public bool IsGreedy => Options.Temperature == 0f || Options.TopK == 1;

    /// <summary>Restarts the random sequence, so the same logits give the same tokens again.</summary>
    public void Reseed(ulong seed) => rng = new Xoshiro256StarStar(seed);

    public int Sample(ReadOnlySpan<float> logits)
    {
        if (logits.Length != vocabSize)
        {
            throw new ArgumentException($"logits has {logits.Length} entries, the sampler was built for {vocabSize}", nameof(logits));
        }
        if (IsGreedy)
        {
            return ArgMax(logits);
        }

        int n;
        bool sorted;
        int k = Options.TopK;
        if (k > 0 && k < vocabSize)
        {
            n = SelectTopK(logits, k);
            SortDescending(logits, n);
            sorted = true;
        }
        else
        {
            n = 0;
            for (int i = 0; i < vocabSize; i++)
            {
                if (!float.IsNaN(logits[i]))
                {
                    candidates[n++] = i;
                }
            }
            sorted = false;
        }
        if (n == 0)
        {
            throw new InvalidOperationException("every logit is NaN; the model produced no usable distribution");
        }

        if (Options.TopP < 1f && !sorted)
        {
            SortDescending(logits, n);
            sorted = true;
        }

        // softmax(logit / T) over the candidates, shifted by the maximum for range
        double invT = 1.0 / Options.Temperature;
        float max = float.NegativeInfinity;
        for (int i = 0; i < n; i++)
        {
            max = Math.Max(max, logits[candidates[i]]);
        }
        if (float.IsNegativeInfinity(max))
        {
            throw new InvalidOperationException("every logit is -infinity; the model produced no usable distribution");
        }
        double total = 0;
        for (int i = 0; i < n; i++)
        {
            double w = Math.Exp((logits[candidates[i]] - max) * invT);
            weights[i] = w;
            total += w;
        }

        if (Options.TopP < 1f)
        {
            // keep the smallest prefix of the sorted candidates whose probability reaches top-p (at least one)
            double threshold = Options.TopP * total;
            double cumulative = 0;
            int kept = 0;
            while (kept < n)
            {
                cumulative += weights[kept++];
                if (cumulative >= threshold)
                {
                    break;
                }
            }
            n = kept;
            total = cumulative;
        }

        double r = rng.NextDouble() * total;
        double acc = 0;
        for (int i = 0; i < n; i++)
        {
            acc += weights[i];
            if (r < acc)
            {
                return candidates[i];
            }
        }
        return candidates[n - 1]; // r landed in the rounding gap at the very end
    }

    /// <summary>Index of the largest logit; the lowest index wins ties; NaN never wins.</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = -1;
        float bestValue = float.NegativeInfinity;
        for (int i = 0; i < logits.Length; i++)
        {
            float v = logits[i];
            if (v > bestValue || (best < 0 && v == bestValue))
            {
                best = i;
                bestValue = v;
            }
        }
        if (best < 0)
        {
            throw new InvalidOperationException("every logit is NaN; the model produced no usable distribution");
        }
        return best;
    }

    // Min-heap of the k best (by logit) indices in candidates[0..k); O(V log k).
    private int SelectTopK(ReadOnlySpan<float> logits, int k)
    {
        int size = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            float v = logits[i];
            if (float.IsNaN(v))
            {
                continue;
            }
            if (size < k)
            {
                int c = size++;
                candidates[c] = i;
                while (c > 0)
                {
                    int parent = (c - 1) >> 1;
                    if (!Worse(logits, candidates[c], candidates[parent]))
                    {
                        break;
                    }
                    (candidates[c], candidates[parent]) = (candidates[parent], candidates[c]);
                    c = parent;
                }
            }
            else if (Worse(logits, candidates[0], i))
            {
                candidates[0] = i;
                int c = 0;
                while (true)
                {
                    int l = 2 * c + 1;
                    if (l >= size)
                    {
                        break;
                    }
                    int m = l + 1 < size && Worse(logits, candidates[l + 1], candidates[l]) ? l + 1 : l;
                    if (!Worse(logits, candidates[m], candidates[c]))
                    {
                        break;
                    }
                    (candidates[c], candidates[m]) = (candidates[m], candidates[c]);
                    c = m;
                }
            }
        }
        return size;
    }

    // a ranks below b: smaller logit, or equal logit and larger index (so ties keep the lower index, like argmax)
    private static bool Worse(ReadOnlySpan<float> logits, int a, int b) =>
        logits[a] < logits[b] || (logits[a] == logits[b] && a > b);

    private void SortDescending(ReadOnlySpan<float> logits, int n)
    {
        for (int i = 0; i < n; i++)
        {
            keys[i] = -logits[candidates[i]];
        }
        Array.Sort(keys, candidates, 0, n);
    }
}
