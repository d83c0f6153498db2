using Microsoft.Win32.SafeHandles;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Model;

namespace MoeLab.Engine.Experts;

/// <summary>
/// Writes an expert variant side file (<see cref="ExpertVariantFiles"/>): every routed expert of a source GGUF
/// dequantized to F32 and quantized to a lower precision, one expert matrix at a time, so memory stays at one
/// expert slice however large the model.
/// </summary>
public static class ExpertRequantizer
{
    /// <summary>Writes <paramref name="modelPath"/>'s experts as <paramref name="type"/> to <paramref name="outPath"/> (default: the side-file path).</summary>
    public static string Write(string modelPath, GgmlType type, string? outPath = null, IProgress<double>? progress = null)
    {
        if (!Quantizer.CanQuantize(type) || type is GgmlType.F32 or GgmlType.Q8_K)
        {
            throw new NotSupportedException($"cannot requant experts to {type} (supported: Q8_0, Q6_K, Q4_K, Q4_0, Q3_K, Q2_K, F16, BF16)");
        }

        var model = GgufFile.Open(modelPath);
        var config = ModelConfig.FromGguf(model);
        var layout = ExpertTensors.Layout(model, config);
        if (layout.Layers == 0) throw new GgufFormatException($"{modelPath}: no routed expert tensors (blk.N.ffn_gate_exps.weight) to requant");
        ref readonly var first = ref layout[0, 0];
        foreach (var t in new[] { first.Gate, first.Up, first.Down })
        {
            if (!Dequantizer.CanDequantize(t.Type))
            {
                throw new NotSupportedException($"{modelPath}: experts are stored as {t.Type}, which MoeLab cannot dequantize (F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, Q2_K, Q3_K)");
            }

            if (t.Cols % GgmlTypeInfo.BlockSize(type) != 0)
            {
                throw new NotSupportedException($"{modelPath}: expert rows of {t.Cols} values cannot be stored as {type} (blocks of {GgmlTypeInfo.BlockSize(type)}); choose Q8_0 or Q4_0 (blocks of 32)");
            }
        }

        string output = outPath ?? ExpertVariantFiles.PathFor(modelPath, type);
        var w = new GgufWriter();
        w.Set("general.architecture", model.Architecture)
         .Set("general.name", $"{model.GetStringOrNull("general.name") ?? Path.GetFileName(modelPath)}: routed experts as {type}")
         .Set(ExpertVariantFiles.SourceKey, Path.GetFileName(modelPath))
         .Set(ExpertVariantFiles.FingerprintKey, ExpertVariantFiles.Fingerprint(model))
         .Set(ExpertVariantFiles.TypeKey, type.ToString().ToLowerInvariant());

        using SafeFileHandle source = File.OpenHandle(modelPath);
        int tensors = layout.Layers * 3, done = 0;
        for (int l = 0; l < layout.Layers; l++)
        {
            int layer = l, block = layout.MoeLayers[l];
            foreach (var (which, name) in new[] { (0, "gate"), (1, "up"), (2, "down") })
            {
                var shape = Pick(layout[layer, 0], which);
                w.AddTensor($"blk.{block}.ffn_{name}_exps.weight", type, [shape.Cols, shape.Rows, layout.ExpertsPerLayer], stream =>
                {
                    for (int e = 0; e < layout.ExpertsPerLayer; e++)
                    {
                        Requant(source, Pick(layout[layer, e], which), type, stream, modelPath);
                    }

                    progress?.Report(++done / (double)tensors);
                });
            }
        }

        string partial = output + ".partial";
        try
        {
            w.Write(partial);
            File.Move(partial, output, overwrite: true);
        }
        finally
        {
            File.Delete(partial);
        }

        return output;
    }

    private static ExpertTensorSlice Pick(in ExpertSlices s, int which) => which switch { 0 => s.Gate, 1 => s.Up, _ => s.Down };

    /// <summary>One expert matrix: read its slice, then row by row dequantize to F32 and quantize to <paramref name="type"/>.</summary>
    private static void Requant(SafeFileHandle source, in ExpertTensorSlice slice, GgmlType type, Stream output, string modelPath)
    {
        var src = new byte[slice.Length];
        int n = RandomAccess.Read(source, src, slice.Offset);
        if (n != src.Length) throw new EndOfStreamException($"{modelPath}: short read of an expert slice at offset {slice.Offset} ({n} of {src.Length} bytes)");
        int inRow = (int)GgmlTypeInfo.RowBytes(slice.Type, slice.Cols), outRow = (int)GgmlTypeInfo.RowBytes(type, slice.Cols);
        var row = new float[slice.Cols];
        var dst = new byte[(long)outRow * slice.Rows];
        for (int r = 0; r < slice.Rows; r++)
        {
            Dequantizer.DequantizeRow(slice.Type, src.AsSpan(r * inRow, inRow), row);
            Quantizer.QuantizeRow(type, row, dst.AsSpan(r * outRow, outRow));
        }

        output.Write(dst);
    }
}
