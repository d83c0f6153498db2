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
        Assert.True(r.MegabytesPerSecond > 0);
    }

    private sealed class FioFactAttribute : FactAttribute
    {
        public FioFactAttribute()
        {
            bool found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, "fio")));
            if (!found) Skip = "fio is not installed";
        }
    }
}
