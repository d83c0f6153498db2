using System.Diagnostics;
using System.Globalization;

namespace MoeLab.Harness.Peers;

/// <summary>
/// Runs a program inside a fresh cgroup-v1 memory group with a hard limit that counts page cache too, so an mmap
/// reader cannot borrow the host's RAM: the fair setting for comparing streaming engines. The child joins the group
/// before exec (through <c>sh</c>), so not one page is charged outside it. Linux, root, /sys/fs/cgroup/memory.
/// </summary>
public static class MemoryLimitedProcess
{
    private const string Root = "/sys/fs/cgroup/memory";

    public sealed record Outcome(int ExitCode, string Stdout, string Stderr, long PeakBytes, bool OomKilled, double Seconds);

    public static bool Available(out string reason)
    {
        reason = "";
        if (!OperatingSystem.IsLinux() || !File.Exists(Path.Combine(Root, "memory.limit_in_bytes")))
        {
            reason = $"no cgroup-v1 memory controller at {Root}";
            return false;
        }

        try
        {
            string probe = Path.Combine(Root, $"moelab-probe-{Environment.ProcessId}");
            Directory.CreateDirectory(probe);
            Directory.Delete(probe);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            reason = $"cannot create a memory cgroup under {Root} ({e.Message}); run as root";
            return false;
        }
    }

    public static Outcome Run(long limitBytes, string program, IEnumerable<string> arguments, TimeSpan timeout)
    {
        if (!Available(out string reason)) throw new InvalidOperationException(reason);
        string group = Path.Combine(Root, $"moelab-bench-{Environment.ProcessId}-{Environment.TickCount64}");
        Directory.CreateDirectory(group);
        try
        {
            string limit = limitBytes.ToString(CultureInfo.InvariantCulture);
            File.WriteAllText(Path.Combine(group, "memory.limit_in_bytes"), limit);
            string memsw = Path.Combine(group, "memory.memsw.limit_in_bytes");
            if (File.Exists(memsw)) File.WriteAllText(memsw, limit); // no swapping around the limit

            var psi = new ProcessStartInfo("sh") { RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("echo $$ > \"$0\" && exec \"$@\"");
            psi.ArgumentList.Add(Path.Combine(group, "cgroup.procs"));
            psi.ArgumentList.Add(program);
            foreach (string a in arguments) psi.ArgumentList.Add(a);
            long t0 = Stopwatch.GetTimestamp();
            using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {program}");
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeout))
            {
                p.Kill(entireProcessTree: true);
                p.WaitForExit();
                throw new TimeoutException($"{Path.GetFileName(program)} did not finish within {timeout.TotalSeconds:F0} s under the {limitBytes >> 20} MiB limit");
            }

            double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            long peak = ReadLong(Path.Combine(group, "memory.max_usage_in_bytes"));
            return new Outcome(p.ExitCode, stdout.Result, stderr.Result, peak, OomKills(group) > 0 || p.ExitCode == 137, seconds);
        }
        finally
        {
            // The group can be removed only once empty; the child has exited (or was killed) by now.
            for (int i = 0; i < 50 && Directory.Exists(group); i++)
            {
                try
                {
                    Directory.Delete(group);
                }
                catch (IOException)
                {
                    Thread.Sleep(100);
                }
            }
        }
    }

    /// <summary>The kernel's count of processes the OOM killer took from this group ("oom_kill N" in memory.oom_control).</summary>
    private static long OomKills(string group)
    {
        string path = Path.Combine(group, "memory.oom_control");
        if (!File.Exists(path)) return 0;
        foreach (string line in File.ReadLines(path))
        {
            if (line.StartsWith("oom_kill ", StringComparison.Ordinal) && long.TryParse(line.AsSpan(9), NumberStyles.Integer, CultureInfo.InvariantCulture, out long n)) return n;
        }

        return 0;
    }

    private static long ReadLong(string path) =>
        File.Exists(path) && long.TryParse(File.ReadAllText(path).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : -1;
}
