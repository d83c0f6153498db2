using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Model;

/// <summary>The weight types the engine computes with, for load-time errors that name what a file would need instead.</summary>
public static class WeightTypes
{
    /// <summary>The ggml types with a matvec kernel, e.g. "supported: F32, F16, Q4_0, …".</summary>
    public static string Supported =>
        "supported: " + string.Join(", ", Enum.GetValues<GgmlType>().Where(MatVec.Supports));
}
