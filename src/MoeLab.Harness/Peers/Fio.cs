using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Kernels;

namespace MoeLab.Harness.Peers;

/// <summary>What the disk itself can do: fio random reads, O_DIRECT through libaio, at one block size and depth.</summary>
public static class Fio
{
    /// <param name="HugePageBuffers">fio read into huge pages (iomem=shmhuge), as the engine's streaming slab does.</param>
    public readonly record struct Result(double MegabytesPerSecond, double MeanLatencyMicroseconds, bool HugePageBuffers);

    /// <summary>
    /// Runs <c>fio --rw=randread --direct=1 --ioengine=libaio</c> over <paramref name="path"/> for
    /// <paramref name="seconds"/> after a ramp of <paramref name="rampSeconds"/>: read-only over an existing file, or
    /// over a file fio lays out first when <paramref name="layOutBytes"/> is given. Throws with fio's own message when
    /// fio is missing or fails.
    /// </summary>
    public static Result RandomRead(string path, long blockSize, int depth, double seconds, long? layOutBytes = null, double rampSeconds = 1)
    {
        bool huge = HugePagesFor(blockSize * depth);
        var read = RunJson(
        [
            "--name=moelab", $"--filename={path}", layOutBytes is { } size ? Inv($"--size={size}") : "--readonly", "--rw=randread",
            Inv($"--bs={blockSize}"), Inv($"--iodepth={depth}"), "--direct=1", "--ioengine=libaio", Inv($"--runtime={seconds}"),
            Inv($"--ramp_time={rampSeconds}"), "--time_based", "--output-format=json", BufferMemory(huge),
        ]);
        return new Result(read.MegabytesPerSecond, read.MeanLatencyMicroseconds, huge);
    }

    /// <summary>
    /// Whether fio can put <paramref name="bufferBytes"/> of I/O buffers in huge pages: the free hugetlb pages
    /// (vm.nr_hugepages, which only root sets) cover them with a page to spare. The engine reads into transparent huge
    /// pages; an O_DIRECT read into 4 KiB pages pins every page, and on the dev VM fio itself ran 2–3× slower that way
    /// (1.6–2.0 against 3.6–5.5 GB/s, 868 KiB reads at depth 8), so without huge pages "engine / fio" flatters the engine.
    /// </summary>
    public static bool HugePagesFor(long bufferBytes)
    {
        try
        {
            long free = 0, pageKib = 0;
            foreach (string line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("HugePages_Free:", StringComparison.Ordinal)) free = long.Parse(line.Split(':')[1].Trim(), CultureInfo.InvariantCulture);
                else if (line.StartsWith("Hugepagesize:", StringComparison.Ordinal)) pageKib = long.Parse(line.Split(':')[1].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }

            return pageKib > 0 && free * pageKib * 1024 >= bufferBytes + (pageKib * 1024);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return false;
        }
    }

    /// <summary>How many 2 MiB huge pages fio needs for <paramref name="bufferBytes"/> of buffers (for the hint printed without them).</summary>
    public static long HugePagesNeeded(long bufferBytes) => (bufferBytes + WeightMemory.HugePageBytes - 1) / WeightMemory.HugePageBytes + 1;

    private static string BufferMemory(bool huge) => huge ? "--iomem=shmhuge" : "--iomem=malloc";

    /// <summary>
    /// What fio did replaying an iolog: its rate over the whole replay, the mean latency of a read from submission to
    /// completion (fio's lat, submission included), and how many reads and bytes it completed.
    /// </summary>
    public readonly record struct ReplayResult(double MegabytesPerSecond, double MeanLatencyMicroseconds, long Reads, long Bytes, bool HugePageBuffers);

    /// <summary>
    /// Replays <paramref name="iolog"/> (<see cref="WriteIolog"/>) with <c>fio --read_iolog --direct=1
    /// --ioengine=libaio</c> at <paramref name="depth"/>: the same reads in the same order; a version 2 log is issued as
    /// fast as the depth allows, a version 3 (timed) log at its timestamps.
    /// </summary>
    /// <param name="largestRead">The log's longest read: fio sizes its buffers as depth × the largest block.</param>
    public static ReplayResult Replay(string iolog, int depth, long largestRead = 0)
    {
        bool huge = largestRead > 0 && HugePagesFor(largestRead * depth);
        var read = RunJson(
        [
            "--name=moelab-replay", $"--read_iolog={iolog}", "--readonly", Inv($"--iodepth={depth}"), "--direct=1", "--ioengine=libaio",
            "--output-format=json", BufferMemory(huge),
        ]);
        return new ReplayResult(read.MegabytesPerSecond, read.MeanTotalLatencyMicroseconds, read.Reads, read.Bytes, huge);
    }

    /// <summary>
    /// Writes <paramref name="log"/> as a fio iolog (fio(1), TRACE FILE FORMAT): each file added and opened, one
    /// "read offset length" line per read in issue order, each file closed. Version 2 by default; <paramref name="timed"/>
    /// writes version 3, every line led by its issue time in microseconds since the first read, which fio's replay keeps.
    /// </summary>
    public static void WriteIolog(TextWriter writer, ExpertReadLog log, bool timed = false)
    {
        foreach (string f in log.Files)
        {
            // fio splits each line at whitespace, and wants absolute paths.
            if (f.Any(char.IsWhiteSpace) || !Path.IsPathRooted(f))
            {
                throw new ArgumentException($"fio's iolog needs an absolute path without whitespace; '{f}' is not (move or link the model)", nameof(log));
            }
        }

        var reads = log.Reads;
        long origin = reads.IsEmpty ? 0 : reads[0].IssuedAt;
        if (timed && (origin == 0 || reads[^1].IssuedAt == 0)) throw new ArgumentException("a timed iolog needs the reads' issue times", nameof(log));
        string Stamp(long at) => timed ? Inv($"{(at - origin) * 1_000_000 / Stopwatch.Frequency} ") : "";
        writer.Write(timed ? "fio version 3 iolog\n" : "fio version 2 iolog\n");
        foreach (string f in log.Files) writer.Write(Inv($"{Stamp(origin)}{f} add\n"));
        foreach (string f in log.Files) writer.Write(Inv($"{Stamp(origin)}{f} open\n"));
        foreach (var r in reads) writer.Write(Inv($"{Stamp(r.IssuedAt)}{log.Files[r.File]} read {r.Offset} {r.Length}\n"));
        foreach (string f in log.Files) writer.Write(Inv($"{Stamp(reads.IsEmpty ? origin : reads[^1].IssuedAt)}{f} close\n"));
    }

    private static (double MegabytesPerSecond, double MeanLatencyMicroseconds, double MeanTotalLatencyMicroseconds, long Reads, long Bytes) RunJson(string[] arguments)
    {
        var psi = new ProcessStartInfo("fio") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments) psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new InvalidOperationException("fio did not start");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"fio is not installed ({e.Message}); on Debian/Ubuntu: apt-get install -y fio", e);
        }

        using (p)
        {
            var stderr = p.StandardError.ReadToEndAsync();
            string json = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"fio exited {p.ExitCode}: {stderr.Result.Trim()}");
            using var doc = JsonDocument.Parse(json);
            var job = doc.RootElement.GetProperty("jobs")[0];
            if (job.GetProperty("error").GetInt32() is int error and not 0) throw new InvalidOperationException($"fio's job failed with error {error}: {stderr.Result.Trim()}");
            var read = job.GetProperty("read");
            return (read.GetProperty("bw_bytes").GetDouble() / 1e6, read.GetProperty("clat_ns").GetProperty("mean").GetDouble() / 1e3,
                read.GetProperty("lat_ns").GetProperty("mean").GetDouble() / 1e3, read.GetProperty("total_ios").GetInt64(), read.GetProperty("io_bytes").GetInt64());
        }
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
