using System.Runtime.InteropServices;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Io;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Tests.Experts;

/// <summary>Runs alone: /proc/self/io counts the whole process, so parallel tests' reads would blur the figures.</summary>
[CollectionDefinition(nameof(PageCacheCollection), DisableParallelization = true)]
public sealed class PageCacheCollection
{
}

[Collection(nameof(PageCacheCollection))]
public sealed unsafe class DirectIoTests
{
    [DirectIoFact]
    public void DirectReadsReachTheDeviceOnEveryPassWhileBufferedRereadsDoNot()
    {
        using var file = new SyntheticExpertFile(layers: 2, experts: 12, seed: 70, hidden: 1024, ff: 256);
        long total = file.Layout.TotalBytes;

        // Control: the measurement can tell a cached re-read from a device read.
        using (var buffered = new ExpertStore(file.Layout, IoMode.Buffered))
        {
            Assert.True(buffered.DropPageCache());
            long cold = Pass(buffered, out _);
            long warm = Pass(buffered, out _);
            Assert.True(cold >= total, $"cold buffered pass read {cold} bytes from the device for {total} bytes of experts");
            Assert.True(warm < total / 10, $"warm buffered pass still read {warm} bytes from the device");
            Assert.True(PageCache.ResidentPages(file.Path) * 4096 >= total, "buffered reads should leave the file cached");
        }

        using var direct = new ExpertStore(file.Layout, IoMode.Direct);
        Assert.True(direct.DropPageCache());
        for (int pass = 0; pass < 2; pass++)
        {
            long device = Pass(direct, out long transferred);
            Assert.True(transferred > total, "direct reads transfer whole aligned blocks");
            Assert.InRange(device, transferred, transferred + (transferred / 20));
        }

        Assert.True(PageCache.ResidentPages(file.Path) <= 2, "direct reads must not populate the page cache");
    }

    [DirectIoFact]
    public void StreamingSourceInDirectModeCountsWhatTheDeviceTransfers()
    {
        using var file = new SyntheticExpertFile(layers: 2, experts: 16, seed: 71, hidden: 1024, ff: 256);
        using var store = new ExpertStore(file.Layout, IoMode.Direct);
        store.DropPageCache();
        var options = new StreamingOptions { BudgetBytes = 6 * store.BufferBytes, WorkingBuffers = 4 };
        using var source = new StreamingExpertSource(store, options, new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), 2, 16), new DemandFirstFifo(4));

        // The same sixteen experts twice: the two-expert cache cannot keep them, so both passes read all of them.
        for (int pass = 0; pass < 2; pass++)
        {
            var before = source.Counters;
            long device = ProcIo.ReadBytes();
            for (int l = 0; l < 2; l++)
            {
                for (int g = 0; g < 16; g += 4)
                {
                    int[] chosen = [g, g + 1, g + 2, g + 3];
                    source.Request(new RoutingObservation { Token = pass, Layer = l, Experts = chosen });
                    foreach (int e in chosen)
                    {
                        file.AssertMatches(l, e, source.Acquire(l, e));
                        source.Release(l, e);
                    }
                }
            }

            source.WaitIdle();
            device = ProcIo.ReadBytes() - device;
            var d = source.Counters - before;
            Assert.Equal(32, d.Misses);
            Assert.Equal(32 * file.ExpertBytes, d.BytesRead);
            Assert.InRange(device, d.BytesTransferred, d.BytesTransferred + (d.BytesTransferred / 20));
        }
    }

    private static long Pass(ExpertStore store, out long transferred)
    {
        byte* buffer = (byte*)NativeMemory.AlignedAlloc((nuint)store.BufferBytes, 4096);
        try
        {
            transferred = 0;
            long before = ProcIo.ReadBytes();
            var layout = store.Layout;
            for (int l = 0; l < layout.Layers; l++)
            {
                for (int e = 0; e < layout.ExpertsPerLayer; e++) transferred += store.ReadExpert(0, l, e, buffer);
            }

            return ProcIo.ReadBytes() - before;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }
}
