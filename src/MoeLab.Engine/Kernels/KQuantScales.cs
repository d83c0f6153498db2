using System.Runtime.CompilerServices;

namespace MoeLab.Engine.Kernels;

/// <summary>Unpacking of the 12-byte, 6-bit scale/min arrays of Q4_K (and Q5_K) and the Q3_K scales.</summary>
internal static unsafe class KQuantScales
{
    /// <summary>
    /// Q4_K: eight 6-bit scales and eight 6-bit mins packed in 12 bytes (ggml get_scale_min_k4): sub-blocks 0-3 use
    /// the low 6 bits of bytes 0-3 (scale) and 4-7 (min); 4-7 take their low nibbles from bytes 8-11 and their top
    /// two bits from the spare top bits of bytes 0-7. Returns the eight scales and eight mins as bytes, in order.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackQ4K(byte* packed, out ulong scales, out ulong mins)
    {
        uint a0 = Unsafe.ReadUnaligned<uint>(packed);
        uint a1 = Unsafe.ReadUnaligned<uint>(packed + 4);
        uint a2 = Unsafe.ReadUnaligned<uint>(packed + 8);
        uint sc03 = a0 & 0x3F3F3F3Fu;
        uint m03 = a1 & 0x3F3F3F3Fu;
        uint sc47 = (a2 & 0x0F0F0F0Fu) | (((a0 >> 6) & 0x03030303u) << 4);
        uint m47 = ((a2 >> 4) & 0x0F0F0F0Fu) | (((a1 >> 6) & 0x03030303u) << 4);
        scales = sc03 | ((ulong)sc47 << 32);
        mins = m03 | ((ulong)m47 << 32);
    }

    /// <summary>Q3_K: sixteen 6-bit signed scales (stored +32): low nibbles in bytes 0-7, top two bits in bytes 8-11.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackQ3K(byte* packed, sbyte* dst16)
    {
        for (int j = 0; j < 16; j++)
        {
            int lo = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
            int hi = (packed[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
            dst16[j] = (sbyte)((lo | (hi << 4)) - 32);
        }
    }
}
