using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace MoeLab.DeviceAgent.Tests.Processes;

/// <summary>
/// A real <c>moelab</c> process (<c>dotnet moelab.dll COMMAND …</c>, the build the tests reference) with its output
/// collected line by line. Disposing kills it (SIGKILL) if it still runs, so no test leaves one behind.
/// </summary>
internal sealed partial class MoelabProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly SemaphoreSlim _lineArrived = new(0);

    private MoelabProcess(Process process, string label)
    {
        _process = process;
        Label = label;
    }

    public string Label { get; }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Everything printed so far, stdout and stderr interleaved as it arrived.</summary>
    public string Output => string.Join("\n", _lines);

    public static MoelabProcess Start(string label, string workingDirectory, params string[] args) =>
        Start(label, workingDirectory, "dotnet", [Path.Combine(AppContext.BaseDirectory, "moelab.dll"), .. args]);

    /// <summary>
    /// The standalone device agent (the program .ci/run publishes with NativeAOT): the binary named by
    /// MOELAB_TEST_AGENT_BINARY when set (e.g. the AOT publish output), else <c>dotnet moelab-agent.dll</c>.
    /// </summary>
    public static MoelabProcess StartStandaloneAgent(string label, string workingDirectory, params string[] args) =>
        Environment.GetEnvironmentVariable("MOELAB_TEST_AGENT_BINARY") is { Length: > 0 } binary
            ? Start(label + $" ({binary})", workingDirectory, binary, args)
            : Start(label, workingDirectory, "dotnet", [Path.Combine(AppContext.BaseDirectory, "moelab-agent.dll"), .. args]);

    private static MoelabProcess Start(string label, string workingDirectory, string program, string[] args)
    {
        var psi = new ProcessStartInfo(program)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var p = new MoelabProcess(new Process { StartInfo = psi }, label);
        p._process.OutputDataReceived += (_, e) => p.Add(e.Data);
        p._process.ErrorDataReceived += (_, e) => p.Add(e.Data);
        p._process.Start();
        p._process.BeginOutputReadLine();
        p._process.BeginErrorReadLine();
        return p;
    }

    /// <summary>Waits for a line matching <paramref name="match"/>; fails with the output so far if the process exits or time runs out.</summary>
    public string WaitForLine(Func<string, bool> match, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            string? hit = _lines.FirstOrDefault(match);
            if (hit is not null) return hit;
            if (_process.HasExited)
            {
                _process.WaitForExit(); // drains the output readers
                hit = _lines.FirstOrDefault(match);
                if (hit is not null) return hit;
                throw new InvalidOperationException($"{Label} exited ({_process.ExitCode}) before printing the expected line:\n{Output}");
            }

            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{Label} did not print the expected line within {timeout.TotalSeconds} s:\n{Output}");
            _lineArrived.Wait(TimeSpan.FromMilliseconds(100));
        }
    }

    public int CountLines(Func<string, bool> match) => _lines.Count(match);

    /// <summary>Waits for the process to exit by itself and returns its exit code.</summary>
    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit(timeout)) throw new TimeoutException($"{Label} still runs after {timeout.TotalSeconds} s:\n{Output}");
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no handler runs, nothing is flushed: a device that loses power or an OOM kill.</summary>
    public void KillNine()
    {
        if (_process.HasExited) return;
        _ = SendSignal(_process.Id, 9);
        _process.WaitForExit();
    }

    /// <summary>SIGSTOP: freezes the process where it is (so the moment of a later kill is known).</summary>
    public void Freeze() => _ = SendSignal(_process.Id, 19);

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
        _lineArrived.Dispose();
    }

    private void Add(string? line)
    {
        if (line is null) return;
        _lines.Enqueue(line);
        try
        {
            _lineArrived.Release();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);
}
