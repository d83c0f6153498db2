using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Experts;

/// <summary>
/// One routed expert's slice of one of the stacked expert tensors (ffn_gate_exps, ffn_up_exps, ffn_down_exps):
/// an absolute byte range in the model file holding a <see cref="Rows"/> × <see cref="Cols"/> matrix of
/// <see cref="Type"/>. GGUF aligns tensors, not experts, so <see cref="Offset"/> is generally not page aligned.
/// </summary>
public readonly record struct ExpertTensorSlice(long Offset, long Length, GgmlType Type, int Rows, int Cols);

/// <summary>
/// The three slices of one expert. In a GGUF the gate, up and down slices lie in three separate tensors, or, with a
/// fused ffn_gate_up_exps tensor, gate and up are adjacent halves of one slab (<see cref="GateUpAdjacent"/>).
/// </summary>
public readonly record struct ExpertSlices(ExpertTensorSlice Gate, ExpertTensorSlice Up, ExpertTensorSlice Down)
{
    public long Bytes => Gate.Length + Up.Length + Down.Length;

    /// <summary>Up starts where gate ends in the file, so one read fetches both.</summary>
    public bool GateUpAdjacent => Up.Offset == Gate.Offset + Gate.Length;
}

/// <summary>
/// Where every routed expert of a model lies in its file: what an <c>ExpertStore</c> needs to read one expert with
/// three positional reads (two when gate and up are adjacent). Built from a GGUF's tensor table (or by a test from hand-placed ranges).
/// </summary>
public sealed class ExpertLayout
{
    private readonly ExpertSlices[] _slices;

    public ExpertLayout(string path, int[] moeLayers, int expertsPerLayer, ExpertSlices[] slicesLayerMajor)
    {
        if (slicesLayerMajor.Length != moeLayers.Length * expertsPerLayer)
        {
            throw new ArgumentException($"expected {moeLayers.Length * expertsPerLayer} expert slices, got {slicesLayerMajor.Length}");
        }

        Path = path;
        MoeLayers = moeLayers;
        ExpertsPerLayer = expertsPerLayer;
        _slices = slicesLayerMajor;
    }

    /// <summary>The model file the offsets refer to.</summary>
    public string Path { get; }

    /// <summary>Model layer index of each MoE layer (all layers for qwen3moe; a dense-first model would skip some).</summary>
    public IReadOnlyList<int> MoeLayers { get; }

    public int Layers => MoeLayers.Count;

    public int ExpertsPerLayer { get; }

    /// <summary>The slices of expert <paramref name="expert"/> of MoE layer <paramref name="layer"/> (0-based among MoE layers).</summary>
    public ref readonly ExpertSlices this[int layer, int expert] => ref _slices[(layer * ExpertsPerLayer) + expert];

    /// <summary>The largest single expert, in bytes: the size of one expert buffer.</summary>
    public long MaxExpertBytes
    {
        get
        {
            long max = 0;
            foreach (var s in _slices)
            {
                max = Math.Max(max, s.Bytes);
            }

            return max;
        }
    }

    public long TotalBytes
    {
        get
        {
            long sum = 0;
            foreach (var s in _slices)
            {
                sum += s.Bytes;
            }

            return sum;
        }
    }
}
