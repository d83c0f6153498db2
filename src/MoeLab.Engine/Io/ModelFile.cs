using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace MoeLab.Engine.Io;

/// <summary>
/// A model file opened for positional reads, through the page cache or around it. In direct mode the device
/// transfers whole aligned blocks, so a byte range is read as its covering aligned range into an aligned buffer and
/// the caller finds its bytes at an offset inside it (<see cref="Read"/> returns that offset).
/// </summary>
public sealed unsafe class ModelFile : IDisposable
{
    /// <summary>Offset, length and buffer alignment for O_DIRECT; 4096 covers every logical block size in use.</summary>
    public const int DirectAlignment = 4096;

    private ModelFile(string path, IoMode mode, SafeFileHandle handle)
    {
        Path = path;
        Mode = mode;
        Handle = handle;
        Length = RandomAccess.GetLength(handle);
    }

    public string Path { get; }

    public IoMode Mode { get; }

    public long Length { get; }

    public SafeFileHandle Handle { get; }

    /// <summary>What a read must be aligned to in this mode (1 when buffered).</summary>
    public int Alignment => Mode == IoMode.Direct ? DirectAlignment : 1;

    /// <summary>Opens <paramref name="path"/>; in direct mode throws <see cref="NotSupportedException"/> where the OS or filesystem has no uncached reads.</summary>
    public static ModelFile Open(string path, IoMode mode)
    {
        if (mode == IoMode.Buffered)
        {
            return new ModelFile(path, mode, File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess));
        }

        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: model file not found", path);
        if (OperatingSystem.IsLinux())
        {
            int fd = NativeIo.OpenDirectLinux(path);
            if (fd < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == NativeIo.EINVAL)
                {
                    throw new NotSupportedException($"{path}: the filesystem does not support O_DIRECT (open returned EINVAL; tmpfs and some FUSE/overlay mounts do not). Put the model on a real disk or use --io buffered.");
                }

                throw new IOException($"{path}: open(O_DIRECT) failed: {NativeIo.ErrorText(errno)} (errno {errno})");
            }

            return new ModelFile(path, mode, new SafeFileHandle(fd, ownsHandle: true));
        }

        if (OperatingSystem.IsMacOS() || OperatingSystem.IsIOS())
        {
            int fd = NativeIo.OpenMac(path);
            if (fd < 0) throw new IOException($"{path}: open failed: {NativeIo.ErrorText(Marshal.GetLastPInvokeError())}");
            var handle = new SafeFileHandle(fd, ownsHandle: true);
            if (NativeIo.SetNoCacheMac(fd) < 0)
            {
                handle.Dispose();
                throw new NotSupportedException($"{path}: fcntl(F_NOCACHE) failed; use --io buffered");
            }

            return new ModelFile(path, mode, handle);
        }

        throw new PlatformNotSupportedException($"{path}: direct I/O is implemented for Linux and Apple platforms only; use --io buffered");
    }

    /// <summary>The aligned range a direct read of [offset, offset+length) transfers (the range itself when buffered).</summary>
    public (long Start, long Length) Covering(long offset, long length)
    {
        long a = Alignment;
        long start = offset / a * a;
        long end = (offset + length + a - 1) / a * a;
        return (start, end - start);
    }

    /// <summary>
    /// Reads bytes [offset, offset+length) into <paramref name="buffer"/> (aligned to <see cref="Alignment"/>,
    /// at least <see cref="Covering"/>.Length bytes) and returns where in the buffer they begin;
    /// <paramref name="transferred"/> is what the device moved (the covering range in direct mode, clipped at EOF).
    /// </summary>
    public int Read(long offset, long length, byte* buffer, out long transferred)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
        {
            throw new IOException($"{Path}: range [{offset}, {offset + length}) lies outside the file ({Length} bytes)");
        }

        var (start, total) = Covering(offset, length);
        long need = offset + length - start;
        long got = 0;
        while (got < need)
        {
            int chunk = (int)Math.Min(total - got, 1 << 30);
            int n = RandomAccess.Read(Handle, new Span<byte>(buffer + got, chunk), start + got);
            if (n <= 0) throw new IOException($"{Path}: read at offset {start + got} returned {n} before the end of range [{offset}, {offset + length})");
            got += n;
        }

        transferred = got;
        return (int)(offset - start);
    }

    /// <summary>posix_fadvise(DONTNEED): evicts this file from the page cache, for cold buffered runs. False where unsupported.</summary>
    public bool DropPageCache()
    {
        if (!OperatingSystem.IsLinux()) return false;
        return NativeIo.DropCache((int)Handle.DangerousGetHandle()) == 0;
    }

    public void Dispose() => Handle.Dispose();
}
