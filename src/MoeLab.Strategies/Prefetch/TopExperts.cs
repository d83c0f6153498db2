using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Prefetch;

/// <summary>Picks the highest-scoring experts of one layer into a prediction span, best first, without allocating.</summary>
internal static class TopExperts
{
    /// <summary>Writes up to <paramref name="top"/> experts with score above <paramref name="minimum"/>; ties go to the lower id.</summary>
    public static int Select<T>(ReadOnlySpan<T> scores, int layer, int top, T minimum, Span<ExpertKey> predictions)
        where T : struct, IComparable<T>
    {
        int n = Math.Min(top, predictions.Length), written = 0;
        while (written < n)
        {
            int best = -1;
            for (int e = 0; e < scores.Length; e++)
            {
                if (scores[e].CompareTo(minimum) <= 0 || Taken(predictions[..written], e)) continue;
                if (best < 0 || scores[e].CompareTo(scores[best]) > 0) best = e;
            }

            if (best < 0) break;
            predictions[written++] = new ExpertKey(layer, best);
        }

        return written;
    }

    private static bool Taken(ReadOnlySpan<ExpertKey> chosen, int expert)
    {
        foreach (var k in chosen)
        {
            if (k.Expert == expert) return true;
        }

        return false;
    }
}
