using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

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
        var psi = new ProcessStartInfo("fio") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[]
        {
            "--name=moelab", $"--filename={path}", layOutBytes is { } size ? Inv($"--size={size}") : "--readonly", "--rw=randread",
            Inv($"--bs={blockSize}"), Inv($"--iodepth={depth}"), "--direct=1", "--ioengine=libaio", Inv($"--runtime={seconds}"),
            Inv($"--ramp_time={rampSeconds}"), "--time_based", "--output-format=json",
        })
        {
            psi.ArgumentList.Add(a);
        }

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
            var read = doc.RootElement.GetProperty("jobs")[0].GetProperty("read");
            return new Result(read.GetProperty("bw_bytes").GetDouble() / 1e6, read.GetProperty("clat_ns").GetProperty("mean").GetDouble() / 1e3);
        }
    }

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
