using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MoeLab.Engine.Kernels;

/// <summary>Instruction-set tiers of the matvec kernels; each tier falls back to the next lower where it has no kernel.</summary>
internal enum KernelIsa
{
    Scalar = 0,
    Vector128 = 1,
    Avx2 = 2,
    AvxVnni = 3,
}

internal static class KernelIsaInfo
{
    /// <summary>The best tier this CPU runs, fixed at startup (static readonly: the JIT folds it into the dispatch).</summary>
    public static readonly KernelIsa Best = Detect();

    public static bool IsSupported(KernelIsa isa) => isa switch
    {
        KernelIsa.Scalar => true,
        KernelIsa.Vector128 => Vector128.IsHardwareAccelerated,
        KernelIsa.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        KernelIsa.AvxVnni => Avx2.IsSupported && Fma.IsSupported && AvxVnni.IsSupported,
        _ => false,
    };

    private static KernelIsa Detect()
    {
        if (IsSupported(KernelIsa.AvxVnni)) return KernelIsa.AvxVnni;
        if (IsSupported(KernelIsa.Avx2)) return KernelIsa.Avx2;
        if (IsSupported(KernelIsa.Vector128)) return KernelIsa.Vector128;
        return KernelIsa.Scalar;
    }
}
