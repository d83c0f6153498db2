using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace MoeLab.Harness.Peers;

/// <summary>llama.cpp's own tools, run on the same GGUF for comparison (built beside the project, never bundled).</summary>
public static partial class LlamaCpp
{
    /// <summary>llama-bench "tg": mean tokens/s over <paramref name="reps"/> runs of n tokens (weights mmapped and, by default, repacked in RAM).</summary>
    public static double BenchDecode(string exe, string model, int n, int reps, int threads) =>
        BenchAverage(exe, ["-m", model, "-p", "0", "-n", Inv($"{n}"), "-r", Inv($"{reps}"), "-t", Inv($"{threads}"), "-o", "csv"]);

    /// <summary>llama-bench's prompt processing (pp): tokens/s evaluating a <paramref name="p"/>-token prompt (-p p -n 0).</summary>
    public static double BenchPrompt(string exe, string model, int p, int reps, int threads) =>
        BenchAverage(exe, ["-m", model, "-p", Inv($"{p}"), "-n", "0", "-r", Inv($"{reps}"), "-t", Inv($"{threads}"), "-o", "csv"]);

    private static double BenchAverage(string exe, string[] args)
    {
        var (code, stdout, stderr) = Run(exe, args);
        if (code != 0) throw new InvalidOperationException($"llama-bench failed ({code}): {Tail(stderr)}");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int col = lines.Length == 0 ? -1 : Array.IndexOf(CsvFields(lines[0]), "avg_ts");
        if (col < 0 || lines.Length < 2) throw new InvalidOperationException("llama-bench printed no avg_ts column");
        return double.Parse(CsvFields(lines[^1])[col], CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Arguments for llama-completion decoding n tokens greedily from the file through mmap with repacking off (a
    /// repacked copy would hold the weights in anonymous memory, which is not streaming), no warm-up pass (it would
    /// touch every expert before the clock starts).
    /// </summary>
    public static string[] MmapCompletionArguments(string model, string prompt, int n, int threads) =>
        ["-m", model, "-p", prompt, "-n", Inv($"{n}"), "-t", Inv($"{threads}"), "--temp", "0", "-no-cnv", "--no-warmup", "--no-repack", "--mmap", "--ignore-eos"];

    /// <summary>Decode tokens/s from llama.cpp's perf print ("eval time = … ms / N runs ( … tokens per second)"), not the prompt's.</summary>
    public static double ParseDecodeTokensPerSecond(string log)
    {
        foreach (string line in log.Split('\n'))
        {
            var m = EvalLine().Match(line);
            if (m.Success) return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        }

        throw new InvalidOperationException("llama.cpp printed no 'eval time … tokens per second' line: " + Tail(log));
    }

    private static (int Code, string Stdout, string Stderr) Run(string exe, string[] args)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {exe}");
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, stdout, stderr.Result);
    }

    internal static string Tail(string text) => text[^Math.Min(text.Length, 800)..];

    private static string[] CsvFields(string line) => CsvField().Matches(line).Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value).ToArray();

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    [GeneratedRegex("\"([^\"]*)\"|([^,]+)")]
    private static partial Regex CsvField();

    [GeneratedRegex(@"(?<!prompt )\beval time\s*=[^(]*\([^,]*,\s*([0-9.]+) tokens per second")]
    private static partial Regex EvalLine();
}
