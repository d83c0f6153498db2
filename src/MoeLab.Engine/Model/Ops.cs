namespace MoeLab.Engine.Model;

/// <summary>Scalar helpers of the forward pass that the kernels' VectorOps (RmsNorm, SwiGlu, …) do not cover.</summary>
public static class Ops
{
    public static float Sigmoid(float x) => 1f / (1f + MathF.Exp(-x));

    /// <summary>Indices of the k largest values, best first (ties: lower index first, as a stable sort gives).</summary>
    public static void TopK(ReadOnlySpan<float> values, Span<int> indices)
    {
        int k = indices.Length;
        for (int j = 0; j < k; j++)
        {
            indices[j] = -1;
        }

        for (int i = 0; i < values.Length; i++)
        {
            float v = values[i];
            int j = k;
            while (j > 0 && (indices[j - 1] < 0 || values[indices[j - 1]] < v))
            {
                j--;
            }

            if (j >= k)
            {
                continue;
            }

            for (int m = k - 1; m > j; m--)
            {
                indices[m] = indices[m - 1];
            }

            indices[j] = i;
        }
    }
}
