using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Model;

/// <summary>
/// Finds the stacked expert tensors (<c>blk.N.ffn_{gate,up,down}_exps.weight</c>, shapes {E, FF, n} and {FF, E, n})
/// and turns them into per-expert byte ranges: expert e of a stacked tensor is its e-th contiguous slab.
/// </summary>
public static class ExpertTensors
{
    public static bool IsRoutedExpert(GgufTensorInfo t) => t.Name.EndsWith("_exps.weight", StringComparison.Ordinal);

    public static ExpertLayout Layout(GgufFile file, ModelConfig config)
    {
        var moeLayers = new List<int>();
        var slices = new List<ExpertSlices>();
        for (int l = 0; l < config.Layers; l++)
        {
            var gate = file.FindTensor($"blk.{l}.ffn_gate_exps.weight");
            if (gate is null)
            {
                continue; // a dense layer
            }

            var up = file.Tensor($"blk.{l}.ffn_up_exps.weight");
            var down = file.Tensor($"blk.{l}.ffn_down_exps.weight");
            Check(file, gate, config.Hidden, config.ExpertFeedForward, config.Experts);
            Check(file, up, config.Hidden, config.ExpertFeedForward, config.Experts);
            Check(file, down, config.ExpertFeedForward, config.Hidden, config.Experts);
            moeLayers.Add(l);
            for (int e = 0; e < config.Experts; e++)
            {
                slices.Add(new ExpertSlices(Slice(gate, e), Slice(up, e), Slice(down, e)));
            }
        }

        return new ExpertLayout(file.Path, [.. moeLayers], config.Experts, [.. slices]);
    }

    private static ExpertTensorSlice Slice(GgufTensorInfo t, int expert)
    {
        int cols = (int)t.Dim(0), rows = (int)t.Dim(1);
        long bytes = GgmlTypeInfo.RowBytes(t.Type, cols) * rows;
        return new ExpertTensorSlice(t.AbsoluteOffset + (expert * bytes), bytes, t.Type, rows, cols);
    }

    private static void Check(GgufFile file, GgufTensorInfo t, int cols, int rows, int experts)
    {
        if (t.Dims.Length != 3 || t.Dim(0) != cols || t.Dim(1) != rows || t.Dim(2) != experts)
        {
            throw new GgufFormatException($"{file.Path}: tensor '{t.Name}' has shape {t.ShapeText}, expected {{{cols}, {rows}, {experts}}}");
        }
    }
}
