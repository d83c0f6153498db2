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
        foreach (bool huge in new[] { true, false })
        {
            byte* p = WeightMemory.Allocate(bytes, huge);
            try
            {
                Assert.Equal(0, (long)p % 64);
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
