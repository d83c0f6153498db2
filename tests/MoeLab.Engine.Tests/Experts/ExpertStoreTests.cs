using System.Runtime.InteropServices;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Io;

namespace MoeLab.Engine.Tests.Experts;

public sealed unsafe class ExpertStoreTests
{
    [Theory]
    [InlineData(IoMode.Buffered)]
    [InlineData(IoMode.Direct)]
    public void ReadsEveryExpertByteExactAtUnalignedOffsets(IoMode mode)
    {
        if (mode == IoMode.Direct && DirectIoProbe.Unsupported is not null) return; // covered by the DirectIoFact tests' skip reason
        using var file = new SyntheticExpertFile(layers: 2, experts: 6, seed: 1);
        using var store = new ExpertStore(file.Layout, mode);
        Assert.Equal(0, store.BufferBytes % 4096);
        byte* buffer = (byte*)NativeMemory.AlignedAlloc((nuint)store.BufferBytes, 4096);
        try
        {
            for (int l = 0; l < 2; l++)
            {
                for (int e = 0; e < 6; e++)
                {
                    new Span<byte>(buffer, (int)store.BufferBytes).Fill(0xEE);
                    long transferred = store.ReadExpert(0, l, e, buffer);
                    Assert.Equal(store.TransferBytes(0, l, e), transferred);
                    if (mode == IoMode.Buffered) Assert.Equal(file.Layout[l, e].Bytes, transferred);
                    else Assert.True(transferred >= file.Layout[l, e].Bytes && transferred % 4096 == 0);
                    file.AssertMatches(l, e, store.View(0, l, e, buffer));
                }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    [Theory]
    [InlineData(IoMode.Buffered, 4096)]
    [InlineData(IoMode.Direct, 4096)]
    [InlineData(IoMode.Direct, 8192)]
    public void ChunkedReadsFillTheSameBytesAsWholeSliceReads(IoMode mode, long chunk)
    {
        if (mode == IoMode.Direct && DirectIoProbe.Unsupported is not null) return; // covered by the DirectIoFact tests' skip reason
        using var file = new SyntheticExpertFile(layers: 2, experts: 4, seed: 7);
        using var whole = new ExpertStore(file.Layout, mode);
        using var chunked = new ExpertStore(file.Layout, mode, chunk);
        Assert.Equal(whole.BufferBytes, chunked.BufferBytes);
        byte* a = (byte*)NativeMemory.AlignedAlloc((nuint)whole.BufferBytes, 4096);
        byte* b = (byte*)NativeMemory.AlignedAlloc((nuint)whole.BufferBytes, 4096);
        try
        {
            for (int l = 0; l < 2; l++)
            {
                for (int e = 0; e < 4; e++)
                {
                    // 17 KiB slices: several pieces each, every one within the chunk size, together the whole transfer.
                    int reads = chunked.Reads(0, l, e);
                    Assert.True(reads > whole.Reads(0, l, e), $"{reads} chunked reads for L{l}/E{e}");
                    long sum = 0;
                    for (int r = 0; r < reads; r++)
                    {
                        long n = chunked.ReadBytes(0, l, e, r);
                        Assert.InRange(n, 1, chunk);
                        sum += n;
                    }

                    Assert.Equal(whole.TransferBytes(0, l, e), sum);
                    new Span<byte>(a, (int)whole.BufferBytes).Fill(0xEE);
                    new Span<byte>(b, (int)whole.BufferBytes).Fill(0xEE);
                    long wholeBytes = whole.ReadExpert(0, l, e, a);

                    // Out of order, as parallel readers would finish them.
                    long chunkedBytes = 0;
                    for (int r = reads - 1; r >= 0; r--) chunkedBytes += chunked.ReadSlice(0, l, e, r, b);
                    Assert.Equal(wholeBytes, chunkedBytes);
                    file.AssertMatches(l, e, chunked.View(0, l, e, b));
                    Assert.True(new Span<byte>(a, (int)whole.BufferBytes).SequenceEqual(new Span<byte>(b, (int)whole.BufferBytes)), $"L{l}/E{e}: buffers differ");
                }
            }
        }
        finally
        {
            NativeMemory.AlignedFree(a);
            NativeMemory.AlignedFree(b);
        }
    }

    [Fact]
    public void ReadChunkMustBeAWholeNumberOfPages()
    {
        using var file = new SyntheticExpertFile(layers: 1, experts: 1, seed: 4);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new ExpertStore(file.Layout, IoMode.Buffered, 5000));
        Assert.Contains("multiple of 4096", ex.Message);
    }

    [Fact]
    public void SliceOutsideTheFileIsRejectedWithItsLocation()
    {
        using var file = new SyntheticExpertFile(layers: 1, experts: 2, seed: 2);
        var s = file.Layout[0, 1];
        var bad = new ExpertLayout(file.Path, [0], 2, [file.Layout[0, 0], s with { Down = s.Down with { Offset = new FileInfo(file.Path).Length - 10 } }]);
        var ex = Assert.Throws<InvalidDataException>(() => new ExpertStore(bad, IoMode.Buffered));
        Assert.Contains("layer 0 expert 1 down", ex.Message);
    }

    [Fact]
    public void SliceLengthMustMatchItsShape()
    {
        using var file = new SyntheticExpertFile(layers: 1, experts: 1, seed: 3);
        var s = file.Layout[0, 0];
        var bad = new ExpertLayout(file.Path, [0], 1, [s with { Up = s.Up with { Rows = s.Up.Rows - 1 } }]);
        var ex = Assert.Throws<InvalidDataException>(() => new ExpertStore(bad, IoMode.Buffered));
        Assert.Contains("up slice", ex.Message);
    }

    [Fact]
    public void DirectModeOnTmpfsFailsWithAClearReason()
    {
        // /dev/shm is tmpfs on Linux; kernels without tmpfs O_DIRECT refuse it. Where it opens, there is nothing to show.
        if (!OperatingSystem.IsLinux() || !Directory.Exists("/dev/shm")) return;
        string path = Path.Combine("/dev/shm", $"moelab-odirect-{Guid.NewGuid():N}");
        File.WriteAllBytes(path, new byte[4096]);
        try
        {
            try
            {
                using var f = ModelFile.Open(path, IoMode.Direct);
            }
            catch (NotSupportedException e)
            {
                Assert.Contains("O_DIRECT", e.Message);
                Assert.Contains("--io buffered", e.Message);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void ResidentSourceServesEveryExpertFromRam()
    {
        using var file = new SyntheticExpertFile(layers: 3, experts: 5, seed: 4);
        using var resident = new ResidentExpertSource(file.Layout);
        Assert.Equal(file.Layout.TotalBytes, resident.LoadedBytes);
        var sink = new CountingSink();
        resident.EventSink = sink;
        for (int l = 0; l < 3; l++)
        {
            for (int e = 0; e < 5; e++)
            {
                file.AssertMatches(l, e, resident.Acquire(l, e));
                resident.Release(l, e);
            }
        }

        Assert.Equal(15, resident.Counters.Hits);
        Assert.Equal(15, sink.Hits);
    }
}
