using System.Numerics.Tensors;

namespace MoeLab.Engine.Model;

/// <summary>The few element-wise operations of the forward pass, span in, span out, allocation-free.</summary>
public static class Ops
{
    /// <summary>y = x / sqrt(mean(x²) + eps) ⊙ weight (the sum of squares in double, as ggml accumulates it).</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> y)
    {
        double sum = 0;
        foreach (float v in x)
        {
            sum += (double)v * v;
        }

        float scale = (float)(1.0 / Math.Sqrt((sum / x.Length) + eps));
        TensorPrimitives.Multiply(x, scale, y);
        TensorPrimitives.Multiply(y, weight, y);
    }

    /// <summary>gate ← silu(gate) ⊙ up (SwiGLU).</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            float g = gate[i];
            gate[i] = g / (1f + MathF.Exp(-g)) * up[i];
        }
    }

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
