using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Model;

/// <summary>
/// Finds the stacked expert tensors and turns them into per-expert byte ranges: expert e of a stacked tensor is its
/// e-th contiguous slab. Two layouts, as llama.cpp's create_tensor_gate_up_exps accepts them:
/// <c>blk.N.ffn_{gate,up,down}_exps.weight</c> ({E, FF, n}, {E, FF, n}, {FF, E, n}), or a fused
/// <c>blk.N.ffn_gate_up_exps.weight</c> {E, 2·FF, n} whose expert slab holds its FF gate rows then its FF up rows
/// (so gate and up of one expert are adjacent in the file and stream as one read) beside ffn_down_exps.
/// </summary>
public static class ExpertTensors
{
    public static bool IsRoutedExpert(GgufTensorInfo t) => t.Name.EndsWith("_exps.weight", StringComparison.Ordinal);

    public static ExpertLayout Layout(GgufFile file, ModelConfig config)
    {
        var moeLayers = new List<int>();
        var slices = new List<ExpertSlices>();
        int ff = config.ExpertFeedForward;
        for (int l = 0; l < config.Layers; l++)
        {
            var gateUp = file.FindTensor($"blk.{l}.ffn_gate_up_exps.weight");
            var gate = file.FindTensor($"blk.{l}.ffn_gate_exps.weight");
            var up = file.FindTensor($"blk.{l}.ffn_up_exps.weight");
            var down = file.FindTensor($"blk.{l}.ffn_down_exps.weight");
            if (gateUp is null && gate is null && up is null && down is null)
            {
                if (file.FindTensor($"blk.{l}.ffn_down.0.weight") is not null)
                {
                    // The pre-2024 Mixtral layout: llama.cpp names these tensors (LLM_TENSOR_FFN_*_EXP) but loads only the stacked ones.
                    throw new GgufFormatException($"{file.Path}: layer {l} stores experts as separate tensors (blk.{l}.ffn_gate.E.weight, an old llama.cpp layout that current llama.cpp does not load either); re-convert the model so the experts are stacked in blk.{l}.ffn_{{gate,up,down}}_exps.weight");
                }

                continue; // a dense layer
            }

            if (down is null || (gateUp is null && (gate is null || up is null)))
            {
                throw new GgufFormatException($"{file.Path}: layer {l} has incomplete routed experts: needs blk.{l}.ffn_down_exps.weight and either blk.{l}.ffn_gate_up_exps.weight or both ffn_gate_exps and ffn_up_exps");
            }

            Check(file, down, config.ExpertFeedForward, config.Hidden, config.Experts);
            moeLayers.Add(l);
            if (gateUp is not null)
            {
                // llama.cpp uses the fused tensor when present and ignores separate gate/up tensors.
                Check(file, gateUp, config.Hidden, 2 * ff, config.Experts);
                long half = GgmlTypeInfo.RowBytes(gateUp.Type, config.Hidden) * ff;
                for (int e = 0; e < config.Experts; e++)
                {
                    long at = gateUp.AbsoluteOffset + (e * 2 * half);
                    slices.Add(new ExpertSlices(
                        new ExpertTensorSlice(at, half, gateUp.Type, ff, config.Hidden),
                        new ExpertTensorSlice(at + half, half, gateUp.Type, ff, config.Hidden),
                        Slice(down, e)));
                }
            }
            else
            {
                Check(file, gate!, config.Hidden, ff, config.Experts);
                Check(file, up!, config.Hidden, ff, config.Experts);
                for (int e = 0; e < config.Experts; e++)
                {
                    slices.Add(new ExpertSlices(Slice(gate!, e), Slice(up!, e), Slice(down, e)));
                }
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

        if (!MatVec.Supports(t.Type))
        {
            throw new GgufFormatException($"{file.Path}: tensor '{t.Name}' is stored as {t.Type}, which MoeLab has no matvec kernel for ({WeightTypes.Supported}); re-quantize it (llama-quantize --tensor-type) or use a file without {t.Type}");
        }

        if (file.FindTensor(t.Name[..^".weight".Length] + ".scale") is { } scale)
        {
            throw new GgufFormatException($"{file.Path}: tensor '{scale.Name}' scales '{t.Name}' per expert (NVFP4-style); MoeLab does not apply weight scales");
        }
    }
}
