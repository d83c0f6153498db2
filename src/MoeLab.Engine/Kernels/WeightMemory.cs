using System.Runtime.InteropServices;

namespace MoeLab.Engine.Kernels;

/// <summary>
/// Native memory for weights that decode streams through the matvec kernels every token. On Linux a block of at least
/// one huge page is 2 MiB-aligned and advised MADV_HUGEPAGE before it is first touched, so transparent huge pages back
/// it even where THP is in <c>madvise</c> mode: a 175 MB output head then costs ~90 TLB entries instead of ~43,000
/// 4 KiB pages per token. Elsewhere, or when the advice fails, it is plain 64-byte-aligned memory. Blocks come from
/// <see cref="Free"/> either way. A huge-page block is its own mapping with a PROT_NONE guard page on each side, so
/// the kernel never merges it with a neighbour (or with the malloc heap, where glibc serves blocks under its dynamic
/// mmap threshold): its advice, residency and /proc/self/smaps figures are its own.
/// </summary>
public static unsafe partial class WeightMemory
{
    public const int HugePageBytes = 2 << 20;

    private const int MadvHugePage = 14; // Linux <asm-generic/mman-common.h>, the same on x86-64 and arm64
    private const int MadvNoHugePage = 15;
    private const int GuardBytes = 4096;

    /// <summary>Blocks from <see cref="Map"/>: address → (mapping start, mapping length), for <see cref="Free"/>.</summary>
    private static readonly Dictionary<nint, (nint Start, nint Length)> Mapped = [];

    /// <summary>Allocates <paramref name="bytes"/> (uninitialized, aligned to <paramref name="alignment"/>, at least 64
    /// bytes, e.g. 4096 for O_DIRECT reads; huge pages as described above when <paramref name="hugePages"/>).</summary>
    public static byte* Allocate(long bytes, bool hugePages = true, int alignment = 64)
    {
        bytes = Math.Max(bytes, 1);
        if (!hugePages || bytes < HugePageBytes || !OperatingSystem.IsLinux() || alignment > HugePageBytes)
        {
            return (byte*)NativeMemory.AlignedAlloc((nuint)bytes, (nuint)Math.Max(alignment, 64));
        }

        // whole huge pages: the advice covers the tail too, and no other allocation shares the block's last page
        long rounded = (bytes + HugePageBytes - 1) & -(long)HugePageBytes;
        byte* p = Map(rounded);
        // failure (THP compiled out, 'never') only loses the speed-up
        _ = madvise(p, (nuint)rounded, MadvHugePage);
        return p;
    }

    /// <summary>
    /// Allocates exactly <paramref name="bytes"/> (uninitialized), 2 MiB-aligned on Linux with only the whole huge pages
    /// inside the block advised, so touching all of it never makes more than <paramref name="bytes"/> resident (a
    /// RAM budget stays a bound); elsewhere, or when <paramref name="hugePages"/> is false, plain memory aligned to
    /// <paramref name="alignment"/>.
    /// </summary>
    public static byte* AllocateWithin(long bytes, int alignment, bool hugePages = true)
    {
        bytes = Math.Max(bytes, 1);
        if (!hugePages || bytes < HugePageBytes || !OperatingSystem.IsLinux() || alignment > HugePageBytes)
        {
            return (byte*)NativeMemory.AlignedAlloc((nuint)bytes, (nuint)alignment);
        }

        byte* p = Map(bytes);
        long whole = bytes & -(long)HugePageBytes;
        _ = madvise(p, (nuint)whole, MadvHugePage);
        // the tail's huge page would reach past the block (THP 'always' would otherwise fault one in)
        if (whole < bytes) _ = madvise(p + whole, (nuint)(bytes - whole), MadvNoHugePage);
        return p;
    }

    public static void Free(void* block)
    {
        (nint Start, nint Length) mapping;
        lock (Mapped)
        {
            if (!Mapped.Remove((nint)block, out mapping))
            {
                mapping = default;
            }
        }

        if (mapping.Length == 0)
        {
            NativeMemory.AlignedFree(block);
        }
        else if (munmap((void*)mapping.Start, (nuint)mapping.Length) != 0)
        {
            throw new InvalidOperationException($"munmap of a {mapping.Length}-byte weight block failed (errno {Marshal.GetLastSystemError()})");
        }
    }

    /// <summary>
    /// A 2 MiB-aligned read-write block of <paramref name="bytes"/> (rounded up to 4 KiB pages) inside an anonymous
    /// PROT_NONE reservation: the guard pages around it cost no RAM and keep its mapping apart from every other.
    /// </summary>
    private static byte* Map(long bytes)
    {
        long length = (bytes + GuardBytes - 1) & -(long)GuardBytes;
        long reserved = length + HugePageBytes + (2L * GuardBytes);
        void* start = mmap(null, (nuint)reserved, ProtNone, MapPrivate | MapAnonymous, -1, 0);
        if (start == (void*)-1)
        {
            throw new OutOfMemoryException($"mmap could not reserve {reserved} bytes for a weight block (errno {Marshal.GetLastSystemError()})");
        }

        var p = (byte*)(((long)start + GuardBytes + HugePageBytes - 1) & -(long)HugePageBytes);
        if (mprotect(p, (nuint)length, ProtRead | ProtWrite) != 0)
        {
            int errno = Marshal.GetLastSystemError();
            _ = munmap(start, (nuint)reserved);
            throw new OutOfMemoryException($"mprotect could not commit {length} bytes for a weight block (errno {errno})");
        }

        lock (Mapped)
        {
            Mapped.Add((nint)p, ((nint)start, (nint)reserved));
        }

        return p;
    }

    /// <summary>
    /// Bytes of [<paramref name="block"/>, +<paramref name="bytes"/>) the kernel backs with transparent huge pages now,
    /// from /proc/self/smaps (the AnonHugePages of the mappings it overlaps: exact for a huge-page block, which is its
    /// own mapping; a plain block's mapping may be shared and counts whole); -1 where that cannot be read. For reports:
    /// the advice can fail silently.
    /// </summary>
    public static long HugePageBytesIn(void* block, long bytes)
    {
        const string Smaps = "/proc/self/smaps";
        if (!OperatingSystem.IsLinux() || !File.Exists(Smaps)) return -1;
        ulong lo = (ulong)block, hi = lo + (ulong)bytes;
        long total = 0;
        bool inside = false;
        foreach (string line in File.ReadLines(Smaps))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash && ulong.TryParse(line.AsSpan(0, dash), System.Globalization.NumberStyles.HexNumber, null, out ulong start)
                && ulong.TryParse(line.AsSpan(dash + 1, space - dash - 1), System.Globalization.NumberStyles.HexNumber, null, out ulong end))
            {
                inside = start < hi && end > lo;
            }
            else if (inside && line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
            {
                total += long.Parse(line.AsSpan(14).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        return total;
    }

    // Linux <asm-generic/mman*.h>: the same on x86-64 and arm64
    private const int ProtNone = 0, ProtRead = 1, ProtWrite = 2, MapPrivate = 0x02, MapAnonymous = 0x20;

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int madvise(void* address, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int mprotect(void* address, nuint length, int protection);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int munmap(void* address, nuint length);
}
