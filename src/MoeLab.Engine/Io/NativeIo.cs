using System.Runtime.InteropServices;

namespace MoeLab.Engine.Io;

/// <summary>The few libc calls .NET's file API does not expose: open with O_DIRECT, posix_fadvise, fcntl.</summary>
internal static partial class NativeIo
{
    public const int EINVAL = 22;

    private const int O_RDONLY = 0;
    private const int O_CLOEXEC_LINUX = 0x80000;
    private const int POSIX_FADV_DONTNEED = 4;
    private const int F_NOCACHE_MAC = 48;

    /// <summary>O_DIRECT differs by architecture on Linux: 0x4000 on x86, 0x10000 on arm/arm64.</summary>
    public static int ODirect => RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x10000 : 0x4000;

    public static int OpenDirectLinux(string path) => open(path, O_RDONLY | O_CLOEXEC_LINUX | ODirect);

    public static int OpenMac(string path) => open(path, O_RDONLY);

    public static int SetNoCacheMac(int fd) => fcntl(fd, F_NOCACHE_MAC, 1);

    /// <summary>Asks the kernel to drop the file's cached pages (clean pages only; the model file is never written).</summary>
    public static int DropCache(int fd) => posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);

    public static string ErrorText(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int fcntl(int fd, int cmd, int arg);

    // Returns the error number itself (not -1/errno), as POSIX specifies for posix_fadvise.
    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int posix_fadvise(int fd, long offset, long len, int advice);
}
