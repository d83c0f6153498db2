using System.Globalization;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Tests.Kernels;

public unsafe class WeightMemoryTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100_000)]
    [InlineData(WeightMemory.HugePageBytes)]
    [InlineData((3 * WeightMemory.HugePageBytes) + 4097)]
    public void BlocksAreAlignedAndWritableToTheLastByte(long bytes)
    {
        foreach (var (huge, alignment) in new[] { (true, 64), (false, 64), (true, 4096), (false, 4096) })
        {
            byte* p = WeightMemory.Allocate(bytes, huge, alignment);
            try
            {
                Assert.Equal(0, (long)p % alignment); // 4096: O_DIRECT read buffers
                if (huge && bytes >= WeightMemory.HugePageBytes && OperatingSystem.IsLinux())
                {
                    Assert.Equal(0, (long)p % WeightMemory.HugePageBytes);
                }

                new Span<byte>(p, (int)Math.Max(bytes, 1)).Fill(0xA5);
                Assert.Equal(0xA5, p[Math.Max(bytes, 1) - 1]);
            }
            finally
            {
                WeightMemory.Free(p);
            }
        }
    }

    /// <summary>
    /// A budgeted block (the streaming slab) never has more of itself in huge pages than its whole huge pages: the
    /// tail's huge page would reach past the block, so RSS could exceed the budget. Touches every page first, beside
    /// touched huge-page blocks allocated before and after it (in CI, other tests' blocks shared its mapping and their
    /// huge pages were counted as the slab's).
    /// </summary>
    [Theory]
    [InlineData((2 * WeightMemory.HugePageBytes) + 4096)]
    [InlineData((3 * WeightMemory.HugePageBytes) - 4096)]
    public void BudgetedBlocksKeepHugePagesInsideThemselves(long bytes)
    {
        const long NeighbourBytes = 8L * WeightMemory.HugePageBytes;
        // a touched huge-page block freed where the slab may land next (glibc reuses its heap for blocks under its
        // dynamic mmap threshold, which freeing a large block raises; the freed range keeps its advice and pages)
        for (int i = 0; i < 2; i++)
        {
            byte* stale = WeightMemory.AllocateWithin(NeighbourBytes + bytes, 4096);
            new Span<byte>(stale, (int)(NeighbourBytes + bytes)).Fill(1);
            WeightMemory.Free(stale);
        }

        byte* before = WeightMemory.Allocate(NeighbourBytes);
        byte* p = WeightMemory.AllocateWithin(bytes, 4096);
        byte* after = WeightMemory.Allocate(NeighbourBytes);
        try
        {
            new Span<byte>(before, (int)NeighbourBytes).Fill(1);
            new Span<byte>(after, (int)NeighbourBytes).Fill(1);
            Assert.Equal(0, (long)p % 4096);
            new Span<byte>(p, (int)bytes).Fill(0x5A);
            Assert.Equal(0x5A, p[bytes - 1]);
            long huge = WeightMemory.HugePageBytesIn(p, bytes);
            if (!OperatingSystem.IsLinux()) return;
            Assert.Equal(0, (long)p % WeightMemory.HugePageBytes);
            Assert.InRange(huge, 0, bytes & -(long)WeightMemory.HugePageBytes);
        }
        finally
        {
            WeightMemory.Free(before);
            WeightMemory.Free(p);
            WeightMemory.Free(after);
        }
    }

    /// <summary>
    /// A huge-page block starts its own mapping and has inaccessible guard pages on both sides, so no neighbour (nor
    /// a freed block's stale advice in the malloc heap) merges into it and smaps' figures for it are its own.
    /// </summary>
    [Fact]
    public void HugePageBlocksAreTheirOwnMappingOnLinux()
    {
        if (!OperatingSystem.IsLinux()) return;
        long bytes = (3 * WeightMemory.HugePageBytes) + 4096;
        byte* a = WeightMemory.Allocate(bytes);
        byte* b = WeightMemory.AllocateWithin(bytes, 4096);
        try
        {
            foreach ((nint p, long length) in new[] { ((nint)a, (bytes + WeightMemory.HugePageBytes - 1) & -(long)WeightMemory.HugePageBytes), ((nint)b, bytes) })
            {
                var maps = Mappings();
                Assert.Contains(maps, m => m.Start == (ulong)p);
                Assert.Equal("---p", maps.Single(m => m.Start <= (ulong)p - 1 && (ulong)p - 1 < m.End).Permissions);
                Assert.Equal("---p", maps.Single(m => m.Start <= (ulong)(p + length) && (ulong)(p + length) < m.End).Permissions);
            }
        }
        finally
        {
            WeightMemory.Free(a);
            WeightMemory.Free(b);
        }
    }

    private static List<(ulong Start, ulong End, string Permissions)> Mappings()
    {
        var maps = new List<(ulong, ulong, string)>();
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            string[] f = line.Split(' ', 3);
            string[] range = f[0].Split('-');
            maps.Add((ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture), ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture), f[1]));
        }

        return maps;
    }

    /// <summary>The kernel records the advice per mapping: smaps' THPeligible turns 1 only for the advised block
    /// (in THP's madvise mode; 'always' makes both eligible, 'never' neither, so those hosts check nothing here).</summary>
    [Fact]
    public void LargeBlocksAreAdvisedIntoHugePagesOnLinux()
    {
        const string Mode = "/sys/kernel/mm/transparent_hugepage/enabled";
        if (!OperatingSystem.IsLinux() || !File.Exists(Mode) || !File.ReadAllText(Mode).Contains("[madvise]", StringComparison.Ordinal))
        {
            return;
        }

        long bytes = 8L * WeightMemory.HugePageBytes;
        byte* advised = WeightMemory.Allocate(bytes, hugePages: true);
        byte* plain = WeightMemory.Allocate(bytes, hugePages: false);
        try
        {
            Assert.Equal(1, ThpEligible(advised));
            Assert.Equal(0, ThpEligible(plain));
        }
        finally
        {
            WeightMemory.Free(advised);
            WeightMemory.Free(plain);
        }
    }

    /// <summary>THPeligible of the /proc/self/smaps mapping that contains <paramref name="p"/>.</summary>
    private static int ThpEligible(byte* p)
    {
        ulong at = (ulong)p;
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-', StringComparison.Ordinal);
            int space = line.IndexOf(' ', StringComparison.Ordinal);
            if (dash > 0 && space > dash && ulong.TryParse(line.AsSpan(0, dash), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong lo)
                && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong hi))
            {
                inside = lo <= at && at < hi;
            }
            else if (inside && line.StartsWith("THPeligible:", StringComparison.Ordinal))
            {
                return int.Parse(line.AsSpan("THPeligible:".Length).Trim(), CultureInfo.InvariantCulture);
            }
        }

        throw new InvalidOperationException($"no mapping with THPeligible contains 0x{at:x}");
    }
}
