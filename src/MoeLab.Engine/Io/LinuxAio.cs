using System.Runtime.InteropServices;

namespace MoeLab.Engine.Io;

/// <summary>
/// Linux native asynchronous I/O (io_setup/io_submit/io_getevents, the kernel interface under fio's libaio engine),
/// called through libc's syscall() so no libaio package or native build artifact is needed. Asynchronous only for
/// O_DIRECT files; on x86-64 and arm64 (the syscall numbers differ), elsewhere <see cref="Supported"/> is false.
/// </summary>
internal static unsafe partial class LinuxAio
{
    public const int EINTR = 4;

    private const ushort IOCB_CMD_PREAD = 0;

    public static bool Supported => OperatingSystem.IsLinux() && Numbers is not null;

    private static (long Setup, long Destroy, long GetEvents, long Submit)? Numbers => RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => (206, 207, 208, 209),
        Architecture.Arm64 => (0, 1, 4, 2),
        _ => null,
    };

    /// <summary>Creates a context for <paramref name="events"/> requests in flight; returns 0 and the errno on failure.</summary>
    public static nint Setup(int events, out int errno)
    {
        nint ctx = 0;
        long rc = syscall(Numbers!.Value.Setup, events, (nint)(&ctx), 0, 0, 0);
        errno = rc < 0 ? Marshal.GetLastPInvokeError() : 0;
        return rc < 0 ? 0 : ctx;
    }

    public static void Destroy(nint ctx) => syscall(Numbers!.Value.Destroy, ctx, 0, 0, 0, 0);

    /// <summary>Queues one positional read of <paramref name="length"/> bytes at <paramref name="offset"/> into <paramref name="buffer"/>; <paramref name="tag"/> comes back in its event.</summary>
    public static long SubmitRead(nint ctx, Iocb* iocb, int fd, long offset, long length, byte* buffer, ulong tag, out int errno)
    {
        *iocb = default;
        iocb->Data = tag;
        iocb->Opcode = IOCB_CMD_PREAD;
        iocb->Fd = (uint)fd;
        iocb->Buffer = (ulong)buffer;
        iocb->Bytes = (ulong)length;
        iocb->Offset = offset;
        Iocb* list = iocb;
        long rc = syscall(Numbers!.Value.Submit, ctx, 1, (nint)(&list), 0, 0);
        errno = rc < 0 ? Marshal.GetLastPInvokeError() : 0;
        return rc;
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for at least one completion; returns how many were written to <paramref name="events"/>, or -1 with the errno.</summary>
    public static long GetEvents(nint ctx, IoEvent* events, int max, int timeoutMs, out int errno)
    {
        var timeout = new Timespec { Seconds = timeoutMs / 1000, Nanoseconds = timeoutMs % 1000 * 1_000_000L };
        long rc = syscall(Numbers!.Value.GetEvents, ctx, 1, max, (nint)events, (nint)(&timeout));
        errno = rc < 0 ? Marshal.GetLastPInvokeError() : 0;
        return rc;
    }

    // syscall(2) is variadic in C; with integer arguments only, x86-64 and arm64 Linux pass them as for a fixed signature.
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long syscall(long number, nint a1, nint a2, nint a3, nint a4, nint a5);

    /// <summary>struct iocb (linux/aio_abi.h, little-endian field order): 64 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Iocb
    {
        public ulong Data;
        public uint Key;
        public int ReadWriteFlags;
        public ushort Opcode;
        public short RequestPriority;
        public uint Fd;
        public ulong Buffer;
        public ulong Bytes;
        public long Offset;
        public ulong Reserved2;
        public uint Flags;
        public uint ResultFd;
    }

    /// <summary>struct io_event: the submitted tag, the iocb, and the result (bytes, or a negative errno).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoEvent
    {
        public ulong Data;
        public ulong Iocb;
        public long Result;
        public long Result2;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec
    {
        public long Seconds;
        public long Nanoseconds;
    }
}
