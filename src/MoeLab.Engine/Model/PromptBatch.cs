using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Model;

/// <summary>
/// Scratch for evaluating a prompt chunk of up to <see cref="Capacity"/> tokens at once, shared by all layers: the
/// residual stream, the normed layer input (as floats and quantized, one vector per token), and projection buffers
/// that grow to the widest layer on first use and are reused afterwards (no allocation per chunk after warm-up).
/// Row i of every buffer belongs to the chunk's i-th token.
/// </summary>
public sealed class PromptBatch
{
    private readonly float[][] _buffers = [[], [], [], [], [], [], [], []];
    private readonly int[][] _ints = [[], [], [], [], [], []];
    private QuantizedVector[] _wide = [];

    public PromptBatch(int capacity, int hidden)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(capacity, BatchMatVec.MaxVectors);
        Capacity = capacity;
        Hidden = hidden;
        Residual = new float[capacity * hidden];
        Normed = new float[capacity * hidden];
        Output = new float[capacity * hidden];
        Input = new QuantizedVector[capacity];
        for (int i = 0; i < capacity; i++) Input[i] = new QuantizedVector(hidden);
        Gather = new QuantizedVector[capacity];
    }

    public int Capacity { get; }

    public int Hidden { get; }

    /// <summary>The residual stream, row per token.</summary>
    public float[] Residual { get; }

    /// <summary>The current layer's normed input, row per token (also quantized in <see cref="Input"/>).</summary>
    public float[] Normed { get; }

    /// <summary>A layer's output before it is added to the residual, row per token.</summary>
    public float[] Output { get; }

    /// <summary>Row i of <see cref="Normed"/>, quantized: what the layer's projections multiply.</summary>
    public QuantizedVector[] Input { get; }

    /// <summary>Slots for a subset of vectors (the tokens that chose one expert), filled by the caller.</summary>
    public QuantizedVector[] Gather { get; }

    public Span<float> Row(float[] rows, int i) => rows.AsSpan(i * Hidden, Hidden);

    /// <summary>Integer buffer <paramref name="which"/> (0..5) of at least <paramref name="length"/>.</summary>
    public int[] Ints(int which, int length)
    {
        if (_ints[which].Length < length) _ints[which] = new int[length];
        return _ints[which];
    }

    /// <summary>Projection buffer <paramref name="which"/> (0..7) holding <see cref="Capacity"/> rows of <paramref name="width"/>.</summary>
    public float[] Buffer(int which, int width)
    {
        if (_buffers[which].Length < Capacity * width) _buffers[which] = new float[Capacity * width];
        return _buffers[which];
    }

    /// <summary><see cref="Capacity"/> quantized vectors of at least <paramref name="width"/> (second-stage activations: attention output, expert hidden).</summary>
    public QuantizedVector[] Wide(int width)
    {
        if (_wide.Length == 0 || _wide[0].MaxLength < width)
        {
            _wide = new QuantizedVector[Capacity];
            for (int i = 0; i < Capacity; i++) _wide[i] = new QuantizedVector(width);
        }

        return _wide;
    }
}
