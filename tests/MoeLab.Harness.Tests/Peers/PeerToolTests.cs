using MoeLab.Harness.Peers;

namespace MoeLab.Harness.Tests.Peers;

public class PeerToolTests
{
    [Theory]
    // llama.cpp 81ff7abe's common_perf_print, with its log timestamps
    [InlineData("0.46.066.037 I common_perf_print: prompt eval time =    6137.86 ms /     2 tokens ( 3068.93 ms per token,     0.33 tokens per second)\n" +
                "0.46.066.072 I common_perf_print:        eval time =   30224.48 ms /     7 runs   ( 4317.78 ms per token,     0.23 tokens per second)\n", 0.23)]
    // older llama_perf_context_print, prompt line after the eval line
    [InlineData("llama_perf_context_print:        eval time =     312.10 ms /    31 runs   (   10.07 ms per token,    99.33 tokens per second)\n" +
                "llama_perf_context_print: prompt eval time =      20.00 ms /     2 tokens (   10.00 ms per token,   100.00 tokens per second)\n", 99.33)]
    public void ParsesDecodeSpeedNotPromptSpeed(string log, double expected)
    {
        Assert.Equal(expected, LlamaCpp.ParseDecodeTokensPerSecond(log), 6);
    }

    [Fact]
    public void MissingEvalLineIsAnErrorNotZero()
    {
        var e = Assert.Throws<InvalidOperationException>(() => LlamaCpp.ParseDecodeTokensPerSecond("prompt eval time = 1 ms / 1 tokens (1 ms per token, 1000.0 tokens per second)"));
        Assert.Contains("eval time", e.Message);
    }

    [Fact]
    public void MmapPeerStreamsTheFileWithoutRepackOrWarmup()
    {
        string[] a = LlamaCpp.MmapCompletionArguments("m.gguf", "The", 16, 2);
        Assert.Contains("--no-repack", a);
        Assert.Contains("--no-warmup", a);
        Assert.Contains("--mmap", a);
        Assert.Equal("16", a[Array.IndexOf(a, "-n") + 1]);
    }

    [CgroupFact]
    public void ChildRunsInsideItsOwnLimitedGroup()
    {
        var r = MemoryLimitedProcess.Run(64L << 20, "cat", ["/proc/self/cgroup"], TimeSpan.FromSeconds(30));
        Assert.Equal(0, r.ExitCode);
        Assert.Contains(r.Stdout.Split('\n'), l => l.Contains(":memory:/moelab-bench-", StringComparison.Ordinal));
        Assert.False(r.OomKilled);
        Assert.DoesNotContain(Directory.GetDirectories("/sys/fs/cgroup/memory"), d => d.Contains($"moelab-bench-{Environment.ProcessId}-", StringComparison.Ordinal));
    }

    [CgroupFact]
    public void ExceedingTheLimitIsReportedAsAnOomKill()
    {
        // dd fills a 64 MiB buffer under a 16 MiB limit that also forbids swap: the kernel must kill it.
        var r = MemoryLimitedProcess.Run(16L << 20, "dd", ["if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"], TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, r.ExitCode);
        Assert.True(r.OomKilled, $"exit {r.ExitCode}, peak {r.PeakBytes}: {r.Stderr}");
        Assert.InRange(r.PeakBytes, 1, 16L << 20);
    }

    private sealed class CgroupFactAttribute : FactAttribute
    {
        public CgroupFactAttribute()
        {
            if (!MemoryLimitedProcess.Available(out string reason)) Skip = reason;
        }
    }
}
