using MoeLab.Engine.Experts;
using MoeLab.Harness.Peers;

namespace MoeLab.Harness.Tests.Peers;

public class FioIologTests
{
    [Fact]
    public void WritesVersion2WithEveryReadInIssueOrder()
    {
        var log = new ExpertReadLog();
        log.Record("/m/a.gguf", 1234567890123, 2359296);
        log.Record("/m/b.gguf", 0, 4096);
        log.Record("/m/a.gguf", 4096, 8192);
        var w = new StringWriter();
        Fio.WriteIolog(w, log);
        Assert.Equal(
            "fio version 2 iolog\n" +
            "/m/a.gguf add\n/m/b.gguf add\n/m/a.gguf open\n/m/b.gguf open\n" +
            "/m/a.gguf read 1234567890123 2359296\n/m/b.gguf read 0 4096\n/m/a.gguf read 4096 8192\n" +
            "/m/a.gguf close\n/m/b.gguf close\n",
            w.ToString());
    }

    [Fact]
    public void TimedLogIsVersion3WithMicrosecondsSinceTheFirstRead()
    {
        var log = new ExpertReadLog();
        long t0 = 1_000_000;
        long us = System.Diagnostics.Stopwatch.Frequency / 1_000_000;
        log.Record("/m/a.gguf", 0, 4096, t0);
        log.Record("/m/a.gguf", 8192, 4096, t0 + (250 * us));
        log.Record("/m/a.gguf", 4096, 4096, t0 + (1_500_000 * us));
        var w = new StringWriter();
        Fio.WriteIolog(w, log, timed: true);
        Assert.Equal(
            "fio version 3 iolog\n0 /m/a.gguf add\n0 /m/a.gguf open\n" +
            "0 /m/a.gguf read 0 4096\n250 /m/a.gguf read 8192 4096\n1500000 /m/a.gguf read 4096 4096\n1500000 /m/a.gguf close\n",
            w.ToString());

        var untimed = new ExpertReadLog();
        untimed.Record("/m/a.gguf", 0, 4096);
        Assert.Throws<ArgumentException>(() => Fio.WriteIolog(new StringWriter(), untimed, timed: true));
    }

    [Theory]
    [InlineData("/my models/a.gguf")]
    [InlineData("models/a.gguf")]
    public void RejectsPathsFioCannotParse(string path)
    {
        var log = new ExpertReadLog();
        log.Record(path, 0, 4096);
        var e = Assert.Throws<ArgumentException>(() => Fio.WriteIolog(new StringWriter(), log));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void HugePagesNeededCoverTheBuffersWithOneToSpare()
    {
        Assert.Equal(2, Fio.HugePagesNeeded(1));
        Assert.Equal(2, Fio.HugePagesNeeded(2L << 20));
        Assert.Equal(5, Fio.HugePagesNeeded(8 * 888832L)); // 6.8 MiB: 4 pages, one to spare
        Assert.False(Fio.HugePagesFor(long.MaxValue / 2));
    }

    [FioFact]
    public void FioReplaysTheLogReadForRead()
    {
        using var dir = new TempDirectory("moelab-fio-");
        string data = Path.Combine(dir.Path, "data.bin");
        File.WriteAllBytes(data, new byte[1 << 20]);
        var log = new ExpertReadLog();
        for (int i = 0; i < 40; i++) log.Record(data, (i * 7 % 64) * 8192L, 8192);
        log.Record(data, (1 << 20) - 4096, 4096);
        string iolog = Path.Combine(dir.Path, "reads.iolog");
        using (var w = new StreamWriter(iolog)) Fio.WriteIolog(w, log);

        Fio.ReplayResult r;
        try
        {
            r = Fio.Replay(iolog, depth: 4);
        }
        catch (InvalidOperationException e) when (e.Message.Contains("O_DIRECT", StringComparison.Ordinal) || e.Message.Contains("Invalid argument", StringComparison.Ordinal))
        {
            return; // a temp filesystem without O_DIRECT (tmpfs): nothing to measure here
        }

        Assert.Equal(41, r.Reads);
        Assert.False(r.HugePageBuffers); // not told the largest read: fio's buffers stay in ordinary pages
        Assert.True(r.MegabytesPerSecond > 0);

        // The timed form replays too (fio 3.31+ reads version 3).
        var timed = new ExpertReadLog();
        for (int i = 0; i < 10; i++) timed.Record(data, i * 8192L, 8192, 1 + (i * System.Diagnostics.Stopwatch.Frequency / 1000));
        string timedLog = Path.Combine(dir.Path, "reads.timed.iolog");
        using (var w = new StreamWriter(timedLog)) Fio.WriteIolog(w, timed, timed: true);
        Assert.Equal(10, Fio.Replay(timedLog, depth: 2).Reads);
    }
}

/// <summary>A fact that needs the fio binary: skipped, and says so, where fio is not installed.</summary>
internal sealed class FioFactAttribute : FactAttribute
{
    public FioFactAttribute()
    {
        bool found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, "fio")));
        if (!found) Skip = "fio is not installed";
    }
}
