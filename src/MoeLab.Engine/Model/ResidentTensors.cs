using Microsoft.Win32.SafeHandles;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Model;

/// <summary>
/// The weights that stay in RAM for the whole run (embeddings, attention, norms, routers, shared experts): read once
/// from the GGUF into 64-byte-aligned native memory (huge pages for large tensors, <see cref="WeightMemory"/>), so kernels see stable pointers and the GC never moves them.
/// Routed experts are never loaded here.
/// </summary>
public sealed unsafe class ResidentTensors : IDisposable
{
    private readonly Dictionary<string, (GgufTensorInfo Info, nint Data)> _tensors = new(StringComparer.Ordinal);

    private readonly HashSet<string> _interleaved = new(StringComparer.Ordinal);
    private readonly bool _interleave;

    /// <param name="interleave">Whether matrices that are only multiplied may be repacked at first use into
    /// <see cref="WeightLayout.Interleaved8"/> where this CPU has a kernel for it (<see cref="RowInterleave"/>).</param>
    /// <param name="hugePages">Whether large tensors go into transparent huge pages (<see cref="WeightMemory"/>).</param>
    public ResidentTensors(GgufFile file, Func<GgufTensorInfo, bool> include, bool interleave = true, bool hugePages = true)
    {
        File = file;
        _interleave = interleave;
        using SafeFileHandle handle = System.IO.File.OpenHandle(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        try
        {
            foreach (var t in file.Tensors)
            {
                if (!include(t))
                {
                    continue;
                }

                long size = t.ByteSize;
                byte* data = WeightMemory.Allocate(size, hugePages);
                _tensors[t.Name] = (t, (nint)data);
                Bytes += size;
                long done = 0;
                while (done < size)
                {
                    int chunk = (int)Math.Min(size - done, 1 << 30);
                    int n = RandomAccess.Read(handle, new Span<byte>(data + done, chunk), t.AbsoluteOffset + done);
                    if (n == 0)
                    {
                        throw new GgufFormatException($"{file.Path}: file ends while reading tensor '{t.Name}' at offset {t.AbsoluteOffset + done}");
                    }

                    done += n;
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public GgufFile File { get; }

    /// <summary>Bytes held in RAM.</summary>
    public long Bytes { get; private set; }

    public bool Has(string name) => _tensors.ContainsKey(name);

    public GgufTensorInfo Info(string name) => Get(name).Info;

    /// <summary>Bytes of the matrices repacked into <see cref="WeightLayout.Interleaved8"/>.</summary>
    public long InterleavedBytes { get; private set; }

    /// <summary>
    /// A 2-D weight: ggml's ne[0] is the row length (input width), ne[1] the number of rows (outputs). Its type must
    /// have a matvec kernel (or, for a table only looked up by row, <paramref name="rowsOnly"/>, a dequantizer).
    /// A matrix that is only multiplied comes back interleaved where that is faster; <paramref name="rowLookups"/>
    /// keeps a multiplied matrix that is also read row by row (a tied embedding) in GGUF layout.
    /// </summary>
    public WeightMatrix Matrix(string name, int expectRows, int expectCols, bool rowsOnly = false, bool rowLookups = false) =>
        View(name, expectRows, expectCols, rowsOnly, interleave: !rowsOnly && !rowLookups);

    private WeightMatrix View(string name, int expectRows, int expectCols, bool rowsOnly, bool interleave)
    {
        var (info, data) = Get(name);
        if (info.Dim(0) != expectCols || info.Dim(1) != expectRows || info.Dims.Length > 2)
        {
            throw new GgufFormatException($"{File.Path}: tensor '{name}' has shape {info.ShapeText}, expected {{{expectCols}, {expectRows}}}");
        }

        if (rowsOnly ? !Dequantizer.CanDequantize(info.Type) : !MatVec.Supports(info.Type))
        {
            throw new GgufFormatException($"{File.Path}: tensor '{name}' is stored as {info.Type}, which MoeLab has no {(rowsOnly ? "dequantizer" : "matvec kernel")} for ({WeightTypes.Supported}); re-quantize it (llama-quantize --tensor-type) or use a file without {info.Type}");
        }

        var m = new WeightMatrix(info.Type, expectRows, expectCols, (byte*)data);
        if (_interleaved.Contains(name))
        {
            return interleave
                ? new WeightMatrix(info.Type, expectRows, expectCols, (byte*)data, WeightLayout.Interleaved8)
                : throw new InvalidOperationException($"{File.Path}: tensor '{name}' was repacked for matvec and cannot also be read by row");
        }

        if (interleave && _interleave && RowInterleave.Worthwhile(m))
        {
            m = RowInterleave.Interleave(m);
            _interleaved.Add(name);
            InterleavedBytes += m.TotalBytes;
        }

        return m;
    }

    /// <summary>A 2-D weight whose rows are split into consecutive parts (a fused projection such as attn_qkv): one view per part.</summary>
    public WeightMatrix[] Split(string name, int expectCols, params int[] partRows)
    {
        int rows = partRows.Sum();
        // parts must be whole row groups to stay valid interleaved views
        var whole = View(name, rows, expectCols, rowsOnly: false, interleave: partRows.All(r => r % RowInterleave.GroupRows == 0));
        var parts = new WeightMatrix[partRows.Length];
        long at = 0;
        for (int i = 0; i < parts.Length; i++)
        {
            parts[i] = new WeightMatrix(whole.Type, partRows[i], expectCols, whole.Data + (at * whole.RowBytes), whole.Layout);
            at += partRows[i];
        }

        return parts;
    }

    /// <summary>A 1-D tensor (norm weights, biases) as F32, dequantizing if it is stored otherwise.</summary>
    public float[] Vector(string name, int expectLength)
    {
        var (info, data) = Get(name);
        if (info.ElementCount != expectLength)
        {
            throw new GgufFormatException($"{File.Path}: tensor '{name}' has shape {info.ShapeText}, expected {expectLength} elements");
        }

        if (!Dequantizer.CanDequantize(info.Type))
        {
            throw new GgufFormatException($"{File.Path}: tensor '{name}' is stored as {info.Type}, which MoeLab cannot dequantize");
        }

        var result = new float[expectLength];
        Dequantizer.DequantizeRow(info.Type, new ReadOnlySpan<byte>((byte*)data, checked((int)info.ByteSize)), result);
        return result;
    }

    private (GgufTensorInfo Info, nint Data) Get(string name) =>
        _tensors.TryGetValue(name, out var t) ? t : throw new GgufFormatException($"{File.Path}: tensor '{name}' is missing");

    public void Dispose()
    {
        foreach (var (_, data) in _tensors.Values)
        {
            WeightMemory.Free((void*)data);
        }

        _tensors.Clear();
    }
}
