using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Kernels;

/// <summary>
/// An activation vector prepared once for several matrix-vector products (gate and up share x). Like ggml's CPU
/// backend, weights meet x in their type's vec_dot_type: Q4_0/Q8_0 rows meet x quantized to Q8_0 blocks, K-quant
/// rows x quantized to Q8_K blocks, F16 rows x rounded to F16 and BF16 rows x rounded to BF16 (the kernels still
/// read floats: the rounded values are exact in F32, and a product of two halves is exact in F32, so the dot is
/// ggml's up to summation order); only F32 rows meet x unrounded. Each form is produced on first use after
/// <see cref="Set"/> and reused. All buffers are allocated (pinned) once, in the constructor.
/// Not thread-safe; <see cref="ComputePool"/> prepares the form on the calling thread before workers read it.
/// </summary>
public sealed unsafe class QuantizedVector
{
    private readonly float* _f32;
    // x rounded to F16 and to BF16, held as floats (vec_dot_type of F16 and BF16 weights in ggml-cpu).
    private readonly float* _f16;
    private readonly float* _bf16;
    // Q8_0 form, unpacked for the kernels: quants contiguous, fp16-rounded scales as floats, and the sum of each
    // block's quants (lets unsigned-weight kernels remove the weight offset once per block).
    private readonly sbyte* _q8;
    private readonly float* _q8Scale;
    private readonly int* _q8Sum;
    // Q8_1's block sum s = fp16(d·Σq) with the unrounded d (Q4_1/Q5_1 weights add min·s per block).
    private readonly float* _q8S;
    // Q8_K form: quants, float scale per 256, and the 16 sums of 16 quants per block (ggml's bsums).
    private readonly sbyte* _qk;
    private readonly float* _qkScale;
    private readonly short* _qkBsums;
    private readonly object[] _keepAlive;
    private bool _q8Ready, _qkReady, _f16Ready, _bf16Ready;

    public QuantizedVector(int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxLength);
        MaxLength = maxLength;
        int n32 = (maxLength + 31) / 32, n256 = (maxLength + 255) / 256;
        var f32 = Pinned<float>(maxLength);
        var f16 = Pinned<float>(maxLength);
        var bf16 = Pinned<float>(maxLength);
        var q8 = Pinned<sbyte>(n32 * 32);
        var q8s = Pinned<float>(n32);
        var q8sum = Pinned<int>(n32);
        var q8s1 = Pinned<float>(n32);
        var qk = Pinned<sbyte>(n256 * 256);
        var qks = Pinned<float>(n256);
        var qkb = Pinned<short>(n256 * 16);
        _keepAlive = [f32, f16, bf16, q8, q8s, q8sum, q8s1, qk, qks, qkb];
        _f32 = Ptr(f32);
        _f16 = Ptr(f16);
        _bf16 = Ptr(bf16);
        _q8 = Ptr(q8);
        _q8Scale = Ptr(q8s);
        _q8Sum = Ptr(q8sum);
        _q8S = Ptr(q8s1);
        _qk = Ptr(qk);
        _qkScale = Ptr(qks);
        _qkBsums = Ptr(qkb);
    }

    public int MaxLength { get; }

    public int Length { get; private set; }

    public ReadOnlySpan<float> Values => new(_f32, Length);

    /// <summary>Stores x (copied); quantized forms are rebuilt on their next use.</summary>
    public void Set(ReadOnlySpan<float> x)
    {
        if (x.Length > MaxLength) throw new ArgumentException($"vector of {x.Length} exceeds this QuantizedVector's capacity {MaxLength}", nameof(x));
        x.CopyTo(new Span<float>(_f32, x.Length));
        Length = x.Length;
        _q8Ready = _qkReady = _f16Ready = _bf16Ready = false;
    }

    /// <summary>
    /// Builds now the form that weights of <paramref name="weightType"/> dot against. MatVec and ComputePool do this
    /// themselves; call it before sharing one vector between threads that call <see cref="MatVec.Multiply"/> directly.
    /// </summary>
    public void PrepareFor(GgmlType weightType) => Prepare(weightType);

    /// <summary>The activation format ggml pairs with weights of <paramref name="weightType"/>.</summary>
    internal static GgmlType ActivationType(GgmlType weightType) => weightType switch
    {
        GgmlType.Q4_0 or GgmlType.Q8_0 or GgmlType.Q5_0 => GgmlType.Q8_0,
        GgmlType.Q4_1 or GgmlType.Q5_1 => GgmlType.Q8_0, // Q8_1 in ggml: the Q8_0 quants plus the block sum s
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q6_K or GgmlType.Q5_K => GgmlType.Q8_K,
        GgmlType.F16 => GgmlType.F16,
        GgmlType.BF16 => GgmlType.BF16,
        _ => GgmlType.F32,
    };

    /// <summary>Makes the form <paramref name="weightType"/>'s kernels need and returns pointers to all forms.</summary>
    internal Activations Prepare(GgmlType weightType)
    {
        float* f32 = _f32;
        switch (ActivationType(weightType))
        {
            case GgmlType.F16:
                if (!_f16Ready) RoundToF16();
                _f16Ready = true;
                f32 = _f16;
                break;
            case GgmlType.BF16:
                if (!_bf16Ready) RoundToBf16();
                _bf16Ready = true;
                f32 = _bf16;
                break;
            case GgmlType.Q8_0 when !_q8Ready:
                QuantizeQ8_0();
                _q8Ready = true;
                break;
            case GgmlType.Q8_K when !_qkReady:
                QuantizeQ8_K();
                _qkReady = true;
                break;
        }
        return new Activations(Length, f32, _q8, _q8Scale, _q8Sum, _qk, _qkScale, _qkBsums) { Q8S = _q8S };
    }

    /// <summary>The Q8_0 form in ggml's block_q8_0 layout (for interop and tests).</summary>
    internal void WriteQ8_0Blocks(Span<byte> dst)
    {
        Prepare(GgmlType.Q8_0);
        for (int b = 0; b < Length / 32; b++)
        {
            var blk = dst.Slice(34 * b, 34);
            BinaryPrimitives.WriteUInt16LittleEndian(blk, Fp16.FromFloat(_q8Scale[b]));
            new ReadOnlySpan<byte>(_q8 + 32 * b, 32).CopyTo(blk[2..]);
        }
    }

    /// <summary>The Q8_1 form in ggml's block_q8_1 layout { half d; half s; int8 qs[32]; } (for interop and tests).</summary>
    internal void WriteQ8_1Blocks(Span<byte> dst)
    {
        Prepare(GgmlType.Q8_0);
        for (int b = 0; b < Length / 32; b++)
        {
            var blk = dst.Slice(36 * b, 36);
            BinaryPrimitives.WriteUInt16LittleEndian(blk, Fp16.FromFloat(_q8Scale[b]));
            BinaryPrimitives.WriteUInt16LittleEndian(blk[2..], Fp16.FromFloat(_q8S[b]));
            new ReadOnlySpan<byte>(_q8 + 32 * b, 32).CopyTo(blk[4..]);
        }
    }

    /// <summary>The Q8_K form in ggml's block_q8_K layout (for interop and tests).</summary>
    internal void WriteQ8_KBlocks(Span<byte> dst)
    {
        Prepare(GgmlType.Q4_K);
        for (int b = 0; b < Length / 256; b++)
        {
            var blk = dst.Slice(292 * b, 292);
            BinaryPrimitives.WriteSingleLittleEndian(blk, _qkScale[b]);
            new ReadOnlySpan<byte>(_qk + 256 * b, 256).CopyTo(blk[4..]);
            for (int g = 0; g < 16; g++) BinaryPrimitives.WriteInt16LittleEndian(blk[(260 + 2 * g)..], _qkBsums[16 * b + g]);
        }
    }

    // ggml-cpu's F32 → F16 row conversion (F16C cvtps_ph): round to nearest even, overflow to ±inf.
    private void RoundToF16()
    {
        for (int i = 0; i < Length; i++) _f16[i] = (float)(Half)_f32[i];
    }

    // ggml_cpu_fp32_to_bf16: round to nearest even on the upper 16 bits (Fp16.ToBf16, NaN kept a NaN).
    private void RoundToBf16()
    {
        for (int i = 0; i < Length; i++) _bf16[i] = Fp16.FromBf16(Fp16.ToBf16(_f32[i]));
    }

    // ggml x86 quantize_row_q8_0: d = amax/127 stored as fp16, quants = round-half-even(x * 127/amax).
    private void QuantizeQ8_0()
    {
        if (Length % 32 != 0) throw new InvalidOperationException($"Q8_0 activations need a length multiple of 32, got {Length}");
        for (int b = 0; b < Length / 32; b++)
        {
            float* x = _f32 + 32 * b;
            var v0 = Vector256.Load(x);
            var v1 = Vector256.Load(x + 8);
            var v2 = Vector256.Load(x + 16);
            var v3 = Vector256.Load(x + 24);
            var m = Vector256.Max(Vector256.Max(Vector256.Abs(v0), Vector256.Abs(v1)), Vector256.Max(Vector256.Abs(v2), Vector256.Abs(v3)));
            float amax = HorizontalMax(m);
            float d = amax / 127f;
            _q8Scale[b] = Fp16.ToFloat(Fp16.FromFloat(d));
            var id = Vector256.Create(amax != 0 ? 127f / amax : 0f);
            var i0 = Vector256.ConvertToInt32(Vector256.Round(v0 * id));
            var i1 = Vector256.ConvertToInt32(Vector256.Round(v1 * id));
            var i2 = Vector256.ConvertToInt32(Vector256.Round(v2 * id));
            var i3 = Vector256.ConvertToInt32(Vector256.Round(v3 * id));
            var q = Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3));
            q.Store(_q8 + 32 * b);
            int sum = 0;
            for (int i = 0; i < 32; i++) sum += _q8[32 * b + i];
            _q8Sum[b] = sum;
            _q8S[b] = Fp16.ToFloat(Fp16.FromFloat(d * sum));
        }
    }

    // ggml quantize_row_q8_K: scale from the signed extreme (-127/max), round half to even, clamp at 127, bsums.
    private void QuantizeQ8_K()
    {
        if (Length % 256 != 0) throw new InvalidOperationException($"Q8_K activations need a length multiple of 256, got {Length}");
        for (int b = 0; b < Length / 256; b++)
        {
            float* x = _f32 + 256 * b;
            var m = Vector256<float>.Zero;
            for (int j = 0; j < 256; j += 8) m = Vector256.Max(m, Vector256.Abs(Vector256.Load(x + j)));
            float amax = HorizontalMax(m);
            sbyte* q = _qk + 256 * b;
            short* bs = _qkBsums + 16 * b;
            if (amax == 0)
            {
                _qkScale[b] = 0;
                new Span<sbyte>(q, 256).Clear();
                new Span<short>(bs, 16).Clear();
                continue;
            }
            float max = 0;
            for (int j = 0; j < 256; j++)
            {
                if (MathF.Abs(x[j]) == amax) { max = x[j]; break; }
            }
            float iscale = -127f / max;
            var vs = Vector256.Create(iscale);
            var cap = Vector256.Create(127);
            for (int j = 0; j < 256; j += 32)
            {
                var i0 = Vector256.Min(Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + j) * vs)), cap);
                var i1 = Vector256.Min(Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + j + 8) * vs)), cap);
                var i2 = Vector256.Min(Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + j + 16) * vs)), cap);
                var i3 = Vector256.Min(Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(x + j + 24) * vs)), cap);
                Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).Store(q + j);
            }
            for (int g = 0; g < 16; g++)
            {
                int s = 0;
                for (int i = 0; i < 16; i++) s += q[16 * g + i];
                bs[g] = (short)s;
            }
            _qkScale[b] = 1 / iscale;
        }
    }

    private static float HorizontalMax(Vector256<float> m)
    {
        var h = Vector128.Max(m.GetLower(), m.GetUpper());
        h = Vector128.Max(h, Vector128.Shuffle(h, Vector128.Create(2, 3, 0, 1)));
        h = Vector128.Max(h, Vector128.Shuffle(h, Vector128.Create(1, 0, 3, 2)));
        return h.ToScalar();
    }

    private static T[] Pinned<T>(int n) where T : unmanaged => GC.AllocateArray<T>(Math.Max(n, 1), pinned: true);

    private static T* Ptr<T>(T[] a) where T : unmanaged => (T*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(a));
}

/// <summary>Pointers to the prepared forms of one activation vector, handed to the kernels.</summary>
internal readonly unsafe struct Activations(int length, float* f32, sbyte* q8, float* q8Scale, int* q8Sum,
    sbyte* qk, float* qkScale, short* qkBsums)
{
    public readonly int Length = length;
    public readonly float* F32 = f32;
    public readonly sbyte* Q8 = q8;
    public readonly float* Q8Scale = q8Scale;
    public readonly int* Q8Sum = q8Sum;
    public readonly sbyte* QK = qk;
    public readonly float* QKScale = qkScale;
    public readonly short* QKBsums = qkBsums;
    public float* Q8S { get; init; }
}
