using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Experts;

/// <summary>Where one expert slice goes: the file range read, and where in the expert buffer it lands and its bytes begin.</summary>
public readonly record struct SlicePlacement(long FileStart, long TransferLength, long BufferOffset, long DataOffset);

/// <summary>One positional read: <see cref="Length"/> bytes requested at <see cref="Start"/>, of which <see cref="Expected"/> exist before the end of the file.</summary>
public readonly unsafe struct ReadTarget(ModelFile file, long start, long length, long expected, byte* destination)
{
    public ModelFile File { get; } = file;

    public long Start { get; } = start;

    public long Length { get; } = length;

    public long Expected { get; } = expected;

    public byte* Destination { get; } = destination;
}

/// <summary>
/// Reads routed experts from the model file(s) with positional reads, one read per gate/up/down slice (gate and up
/// in one read when they are adjacent, as in a fused ffn_gate_up_exps tensor), or, with a read chunk size, each
/// slice's transfer split into equal aligned pieces of at most that size, into an expert buffer of
/// <see cref="BufferBytes"/>. Holds one <see cref="ExpertLayout"/> per stored precision (variant 0
/// is the model file's own). Thread-safe: any number of readers may call <see cref="ReadSlice"/> at once.
/// </summary>
public sealed unsafe class ExpertStore : IDisposable
{
    /// <summary>Slices start at cache-line boundaries in buffered mode so kernels see the same alignment either way.</summary>
    private const int BufferedSliceAlignment = 64;

    private readonly ExpertLayout[] _variants;
    private readonly ModelFile[] _fileOfVariant;
    private readonly List<ModelFile> _files = [];

    public ExpertStore(ExpertLayout layout, IoMode mode, long readChunkBytes = 0)
        : this([layout], mode, readChunkBytes)
    {
    }

    /// <param name="readChunkBytes">
    /// 0: one read per slice transfer. Otherwise the largest read issued (a positive multiple of 4096): a slice's
    /// transfer is split into equal 4 KiB-aligned pieces, so one expert's reads can keep the whole queue depth busy and
    /// experts land one after another instead of all at once.
    /// </param>
    public ExpertStore(IReadOnlyList<ExpertLayout> variants, IoMode mode, long readChunkBytes = 0)
    {
        if (variants.Count == 0) throw new ArgumentException("an expert store needs at least one layout", nameof(variants));
        if (readChunkBytes < 0 || readChunkBytes % ModelFile.DirectAlignment != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(readChunkBytes), readChunkBytes, $"the read chunk size must be 0 (whole slices) or a positive multiple of {ModelFile.DirectAlignment} bytes");
        }

        ReadChunkBytes = readChunkBytes;
        _variants = [.. variants];
        _fileOfVariant = new ModelFile[_variants.Length];
        Mode = mode;
        try
        {
            for (int v = 0; v < _variants.Length; v++)
            {
                var open = _files.Find(f => f.Path == _variants[v].Path);
                if (open is null)
                {
                    open = ModelFile.Open(_variants[v].Path, mode);
                    _files.Add(open);
                }

                _fileOfVariant[v] = open;
                if (_variants[v].Layers != _variants[0].Layers || _variants[v].ExpertsPerLayer != _variants[0].ExpertsPerLayer)
                {
                    throw new ArgumentException($"variant {v} ({_variants[v].Path}) has {_variants[v].Layers}×{_variants[v].ExpertsPerLayer} experts, variant 0 has {_variants[0].Layers}×{_variants[0].ExpertsPerLayer}", nameof(variants));
                }

                Validate(_variants[v], open);
            }
        }
        catch
        {
            Dispose();
            throw;
        }

        SliceAlignment = mode == IoMode.Direct ? ModelFile.DirectAlignment : BufferedSliceAlignment;
        long max = 0;
        for (int v = 0; v < _variants.Length; v++)
        {
            var layout = _variants[v];
            for (int l = 0; l < layout.Layers; l++)
            {
                for (int e = 0; e < layout.ExpertsPerLayer; e++)
                {
                    max = Math.Max(max, Place(v, l, e, 3).BufferOffset);
                }
            }
        }

        BufferBytes = AlignUp(max, ModelFile.DirectAlignment);
    }

    public IoMode Mode { get; }

    /// <summary>Largest positional read issued; 0 when each slice transfer is one read.</summary>
    public long ReadChunkBytes { get; }

    public IReadOnlyList<ExpertLayout> Variants => _variants;

    public ExpertLayout Layout => _variants[0];

    /// <summary>Bytes of one expert buffer: enough for any expert of any variant with its alignment padding; a multiple of 4096.</summary>
    public long BufferBytes { get; }

    /// <summary>Alignment the expert buffer itself must have (4096 covers both modes).</summary>
    public static int BufferAlignment => ModelFile.DirectAlignment;

    private int SliceAlignment { get; }

    /// <summary>
    /// Positional reads one expert takes: one per slice transfer (3: gate, up, down; 2 when gate and up are adjacent in
    /// the file, as in a fused ffn_gate_up_exps tensor, and one read fetches both), each split into
    /// <see cref="Pieces"/> when a read chunk size is set. Reads are numbered in file order (gate first, down last).
    /// </summary>
    public int Reads(int variant, int layer, int expert)
    {
        int n = 0;
        for (int slice = 0; slice < 3; slice++) n += Pieces(Place(variant, layer, expert, slice).TransferLength, out _);
        return n;
    }

    /// <summary>Bytes read <paramref name="read"/> of an expert transfers (before clipping at the end of the file).</summary>
    public long ReadBytes(int variant, int layer, int expert, int read)
    {
        var (p, at, length) = Locate(variant, layer, expert, read);
        return length;
    }

    /// <summary>
    /// Placement of slice <paramref name="slice"/> (0 gate, 1 up, 2 down) of an expert; slice 3 gives, in
    /// <see cref="SlicePlacement.BufferOffset"/>, the buffer bytes the whole expert occupies. When gate and up share
    /// one read, that read is slice 0's transfer and slice 1 transfers nothing (its data lies inside slice 0's).
    /// </summary>
    public SlicePlacement Place(int variant, int layer, int expert, int slice)
    {
        ref readonly var s = ref _variants[variant][layer, expert];
        var file = _fileOfVariant[variant];
        bool joint = s.GateUpAdjacent;
        long bufferOffset = 0;
        for (int i = 0; ; i++)
        {
            var t = i switch { 0 => s.Gate, 1 => s.Up, _ => s.Down };
            if (joint && i == 1)
            {
                if (slice == 1)
                {
                    var (gateStart, _) = file.Covering(s.Gate.Offset, s.Gate.Length + s.Up.Length);
                    long first = Place(variant, layer, expert, 0).BufferOffset;
                    return new SlicePlacement(gateStart, 0, first, first + (s.Up.Offset - gateStart));
                }

                continue;
            }

            var (start, length) = joint && i == 0 ? file.Covering(s.Gate.Offset, s.Gate.Length + s.Up.Length) : file.Covering(t.Offset, t.Length);
            if (i == slice) return new SlicePlacement(start, length, bufferOffset, bufferOffset + (t.Offset - start));
            bufferOffset = AlignUp(bufferOffset + length, SliceAlignment);
            if (i == 2) return new SlicePlacement(0, 0, bufferOffset, bufferOffset);
        }
    }

    /// <summary>Bytes the device transfers to read this expert (its own bytes plus direct-mode alignment padding).</summary>
    public long TransferBytes(int variant, int layer, int expert) =>
        Place(variant, layer, expert, 0).TransferLength + Place(variant, layer, expert, 1).TransferLength + Place(variant, layer, expert, 2).TransferLength;

    /// <summary>
    /// Performs read <paramref name="read"/> (0 ≤ read &lt; <see cref="Reads"/>) of an expert into the expert buffer at
    /// <paramref name="buffer"/>; returns the bytes transferred.
    /// </summary>
    public long ReadSlice(int variant, int layer, int expert, int read, byte* buffer)
    {
        var t = Target(variant, layer, expert, read, buffer);
        int offset = t.File.Read(t.Start, t.Expected, t.Destination, out long transferred);
        System.Diagnostics.Debug.Assert(offset == 0, "a piece of a covering range starts aligned");
        return transferred;
    }

    /// <summary>
    /// Where read <paramref name="read"/> of an expert goes: the file, the (direct-mode aligned) range to request, the
    /// bytes that must arrive (the range clipped at the end of the file), and the destination in the expert buffer.
    /// </summary>
    public ReadTarget Target(int variant, int layer, int expert, int read, byte* buffer)
    {
        var (p, at, length) = Locate(variant, layer, expert, read);
        var file = _fileOfVariant[variant];
        long start = p.FileStart + at;

        // A piece is a sub-range of the slice's covering range, so it is aligned itself; only the file's end clips it.
        return new ReadTarget(file, start, length, Math.Min(length, file.Length - start), buffer + p.BufferOffset + at);
    }

    /// <summary>Performs all of an expert's reads, one after another; returns the bytes transferred.</summary>
    public long ReadExpert(int variant, int layer, int expert, byte* buffer)
    {
        long transferred = 0;
        for (int r = 0, n = Reads(variant, layer, expert); r < n; r++) transferred += ReadSlice(variant, layer, expert, r, buffer);
        return transferred;
    }

    /// <summary>The expert's matrices as they lie in a buffer that <see cref="ReadExpert"/> (or three <see cref="ReadSlice"/>) filled.</summary>
    public ExpertWeights View(int variant, int layer, int expert, byte* buffer)
    {
        ref readonly var s = ref _variants[variant][layer, expert];
        return new ExpertWeights(
            new WeightMatrix(s.Gate.Type, s.Gate.Rows, s.Gate.Cols, buffer + Place(variant, layer, expert, 0).DataOffset),
            new WeightMatrix(s.Up.Type, s.Up.Rows, s.Up.Cols, buffer + Place(variant, layer, expert, 1).DataOffset),
            new WeightMatrix(s.Down.Type, s.Down.Rows, s.Down.Cols, buffer + Place(variant, layer, expert, 2).DataOffset));
    }

    /// <summary>Evicts the model file(s) from the page cache (for cold buffered measurements). False where unsupported.</summary>
    public bool DropPageCache()
    {
        bool ok = true;
        foreach (var f in _files) ok &= f.DropPageCache();
        return ok;
    }

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }

    private static long AlignUp(long x, long a) => (x + a - 1) / a * a;

    /// <summary>How many reads a transfer of <paramref name="transfer"/> bytes takes, and the bytes of each but the last.</summary>
    private int Pieces(long transfer, out long piece)
    {
        if (transfer == 0)
        {
            piece = 0;
            return 0;
        }

        if (ReadChunkBytes == 0 || transfer <= ReadChunkBytes)
        {
            piece = transfer;
            return 1;
        }

        // Equal pieces (the last one shorter by under one alignment unit), so the device sees one block size.
        long n = (transfer + ReadChunkBytes - 1) / ReadChunkBytes;
        piece = AlignUp((transfer + n - 1) / n, ModelFile.DirectAlignment);
        return (int)((transfer + piece - 1) / piece);
    }

    /// <summary>Which slice transfer read <paramref name="read"/> belongs to, and its offset and length within that transfer.</summary>
    private (SlicePlacement Slice, long At, long Length) Locate(int variant, int layer, int expert, int read)
    {
        int r = read;
        for (int slice = 0; slice < 3; slice++)
        {
            var p = Place(variant, layer, expert, slice);
            int n = Pieces(p.TransferLength, out long piece);
            if (r < n)
            {
                long at = r * piece;
                return (p, at, Math.Min(piece, p.TransferLength - at));
            }

            r -= n;
        }

        throw new ArgumentOutOfRangeException(nameof(read), read, $"expert L{layer}/E{expert} takes {Reads(variant, layer, expert)} reads");
    }

    private static void Validate(ExpertLayout layout, ModelFile file)
    {
        for (int l = 0; l < layout.Layers; l++)
        {
            for (int e = 0; e < layout.ExpertsPerLayer; e++)
            {
                ref readonly var s = ref layout[l, e];
                Check(s.Gate, "gate");
                Check(s.Up, "up");
                Check(s.Down, "down");

                void Check(in ExpertTensorSlice t, string which)
                {
                    if (t.Offset < 0 || t.Length <= 0 || t.Offset + t.Length > file.Length)
                    {
                        throw new InvalidDataException($"{file.Path}: layer {l} expert {e} {which} slice [{t.Offset}, {t.Offset + t.Length}) lies outside the file ({file.Length} bytes)");
                    }

                    long expected = GgmlTypeInfo.RowBytes(t.Type, t.Cols) * t.Rows;
                    if (t.Length != expected)
                    {
                        throw new InvalidDataException($"{file.Path}: layer {l} expert {e} {which} slice is {t.Length} bytes but {t.Rows}×{t.Cols} {t.Type} takes {expected}");
                    }

                    if (t.Length > int.MaxValue)
                    {
                        throw new InvalidDataException($"{file.Path}: layer {l} expert {e} {which} slice is {t.Length} bytes; slices over 2 GiB are not supported");
                    }
                }
            }
        }
    }
}
