using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MoeLab.Engine.Experts;

namespace MoeLab.Harness.Peers;

/// <summary>What the disk itself can do: fio random reads, O_DIRECT through libaio, at one block size and depth.</summary>
public static class Fio
{
    public readonly record struct Result(double MegabytesPerSecond, double MeanLatencyMicroseconds);

    /// <summary>
    /// Runs <c>fio --rw=randread --direct=1 --ioengine=libaio</c> over <paramref name="path"/> for
    /// <paramref name="seconds"/> after a ramp of <paramref name="rampSeconds"/>: read-only over an existing file, or
    /// over a file fio lays out first when <paramref name="layOutBytes"/> is given. Throws with fio's own message when
    /// fio is missing or fails.
    /// </summary>
    public static Result RandomRead(string path, long blockSize, int depth, double seconds, long? layOutBytes = null, double rampSeconds = 1)
    {
        var read = RunJson(
        [
            "--name=moelab", $"--filename={path}", layOutBytes is { } size ? Inv($"--size={size}") : "--readonly", "--rw=randread",
            Inv($"--bs={blockSize}"), Inv($"--iodepth={depth}"), "--direct=1", "--ioengine=libaio", Inv($"--runtime={seconds}"),
            Inv($"--ramp_time={rampSeconds}"), "--time_based", "--output-format=json",
        ]);
        return new Result(read.MegabytesPerSecond, read.MeanLatencyMicroseconds);
    }

    /// <summary>What fio did replaying an iolog: its rate and how many reads and bytes it completed.</summary>
    public readonly record struct ReplayResult(double MegabytesPerSecond, double MeanLatencyMicroseconds, long Reads, long Bytes);

    /// <summary>
    /// Replays <paramref name="iolog"/> (<see cref="WriteIolog"/>) with <c>fio --read_iolog --direct=1
    /// --ioengine=libaio</c> at <paramref name="depth"/>: the same reads in the same order, issued as fast as the depth
    /// allows (a version 2 log has no timestamps).
    /// </summary>
    public static ReplayResult Replay(string iolog, int depth)
    {
        var read = RunJson(
        [
            "--name=moelab-replay", $"--read_iolog={iolog}", "--readonly", Inv($"--iodepth={depth}"), "--direct=1", "--ioengine=libaio",
            "--output-format=json",
        ]);
        return new ReplayResult(read.MegabytesPerSecond, read.MeanLatencyMicroseconds, read.Reads, read.Bytes);
    }

    /// <summary>
    /// Writes <paramref name="log"/> as a fio iolog, version 2 ("fio version 2 iolog"; fio(1), TRACE FILE FORMAT):
    /// each file added and opened, one "read offset length" line per read in issue order, each file closed.
    /// </summary>
    public static void WriteIolog(TextWriter writer, ExpertReadLog log)
    {
        foreach (string f in log.Files)
        {
            // fio splits each line at whitespace, and wants absolute paths.
            if (f.Any(char.IsWhiteSpace) || !Path.IsPathRooted(f))
            {
                throw new ArgumentException($"fio's iolog needs an absolute path without whitespace; '{f}' is not (move or link the model)", nameof(log));
            }
        }

        writer.Write("fio version 2 iolog\n");
        foreach (string f in log.Files) writer.Write(Inv($"{f} add\n"));
        foreach (string f in log.Files) writer.Write(Inv($"{f} open\n"));
        foreach (var r in log.Reads) writer.Write(Inv($"{log.Files[r.File]} read {r.Offset} {r.Length}\n"));
        foreach (string f in log.Files) writer.Write(Inv($"{f} close\n"));
    }

    private static (double MegabytesPerSecond, double MeanLatencyMicroseconds, long Reads, long Bytes) RunJson(string[] arguments)
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
                read.GetProperty("total_ios").GetInt64(), read.GetProperty("io_bytes").GetInt64());
        }
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
