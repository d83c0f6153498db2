using System.Numerics.Tensors;

namespace MoeLab.Engine.Kernels;

/// <summary>The small element-wise operations of a transformer layer, span in / span out, no allocation.</summary>
public static class VectorOps
{
    /// <summary>dst = x / sqrt(mean(x²) + eps) ⊙ weight (ggml rms_norm followed by mul, in that order).</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, float eps, Span<float> dst)
    {
        if (weight.Length != x.Length || dst.Length < x.Length) throw new ArgumentException($"RmsNorm: x {x.Length}, weight {weight.Length}, dst {dst.Length}");
        float scale = RmsScale(x, eps);
        TensorPrimitives.Multiply(x, scale, dst[..x.Length]);
        TensorPrimitives.Multiply(dst[..x.Length], weight, dst[..x.Length]);
    }

    /// <summary>RmsNorm without a weight (ggml rms_norm alone).</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, float eps, Span<float> dst) =>
        TensorPrimitives.Multiply(x, RmsScale(x, eps), dst[..x.Length]);

    /// <summary>1/sqrt(mean(x²) + eps) with the sum of squares in double, as ggml's rms_norm accumulates it.</summary>
    private static float RmsScale(ReadOnlySpan<float> x, float eps)
    {
        if (x.Length == 0) return 0;
        double sum = 0;
        foreach (float v in x)
        {
            sum += (double)v * v;
        }

        return (float)(1.0 / Math.Sqrt((sum / x.Length) + eps));
    }

    /// <summary>x = x·sigmoid(x), in place.</summary>
    public static void Silu(Span<float> x)
    {
        Span<float> tmp = stackalloc float[256];
        for (int i = 0; i < x.Length; i += tmp.Length)
        {
            var chunk = x.Slice(i, Math.Min(tmp.Length, x.Length - i));
            var t = tmp[..chunk.Length];
            TensorPrimitives.Sigmoid(chunk, t);
            TensorPrimitives.Multiply(chunk, t, chunk);
        }
    }

    /// <summary>gate = silu(gate) ⊙ up, in place: the SwiGLU of an expert's feed-forward.</summary>
    public static void SwiGlu(Span<float> gate, ReadOnlySpan<float> up)
    {
        if (up.Length != gate.Length) throw new ArgumentException($"SwiGlu: gate {gate.Length}, up {up.Length}");
        Silu(gate);
        TensorPrimitives.Multiply(gate, up, gate);
    }

    /// <summary>x = softmax(x), in place, shifted by the maximum for stability.</summary>
    public static void Softmax(Span<float> x)
    {
        if (x.IsEmpty) return;
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, x);
        TensorPrimitives.Exp(x, x);
        float sum = TensorPrimitives.Sum(x);
        TensorPrimitives.Multiply(x, 1f / sum, x);
    }

    /// <summary>dst = a + b.</summary>
    public static void Add(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> dst) => TensorPrimitives.Add(a, b, dst);

    /// <summary>dst += x (residual connections).</summary>
    public static void AddInPlace(Span<float> dst, ReadOnlySpan<float> x) => TensorPrimitives.Add(dst, x, dst);

    /// <summary>x *= s.</summary>
    public static void Scale(Span<float> x, float s) => TensorPrimitives.Multiply(x, s, x);

    /// <summary>dst += a·x (weighted sum of expert outputs).</summary>
    public static void Axpy(Span<float> dst, float a, ReadOnlySpan<float> x) => TensorPrimitives.MultiplyAdd(x, a, dst, dst);

    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b) => TensorPrimitives.Dot(a, b);
}
