using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MoeLab.Engine.Kernels;

/// <summary>IEEE half and bfloat16 conversions as ggml does them (round to nearest even).</summary>
internal static unsafe class Fp16
{
    // A 256 KiB lookup table: block scales are read one at a time at strided addresses, where a table load
    // beats the bit-twiddling conversion (ggml's CPU backend kept such a table for the same reason).
    private static readonly float[] Table = BuildTable();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToFloat(ushort h) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Table), h);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(byte* p) => ToFloat(*(ushort*)p);

    public static ushort FromFloat(float f) => BitConverter.HalfToUInt16Bits((Half)f);

    /// <summary>ggml_compute_fp32_to_bf16: round to nearest even, NaN stays a (quiet) NaN.</summary>
    public static ushort ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromBf16(ushort b) => BitConverter.UInt32BitsToSingle((uint)b << 16);

    private static float[] BuildTable()
    {
        var t = new float[65536];
        for (int i = 0; i < t.Length; i++) t[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        return t;
    }
}
