using System.Text.Json.Nodes;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.Harness.Tests.Cli;

/// <summary>
/// <c>moelab bench --fio-replay</c> pairs every timed repetition with fio replaying that repetition's own reads (the
/// disk drifts too much between minutes to compare a whole run with one replay afterwards).
/// </summary>
[Collection(nameof(ConsoleCollection))]
public sealed class BenchCommandTests : IDisposable
{
    // Beside the test binaries, not in /tmp: direct reads need a real filesystem (tmpfs refuses O_DIRECT).
    private readonly string _dir = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "bench-" + Guid.NewGuid().ToString("N"))).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_streaming_run_reports_the_router_input_similarity_and_the_files_layer_update_scale()
    {
        string model = Path.Combine(_dir, "damped.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.Q8_0, Seed: 3) { LayerUpdateScale = 0.3f }, model);
        string[] bench = ["bench", "--model", model, "--budget", "200KiB", "-n", "4", "-r", "1", "-p", "0", "--warmup", "0", "--threads", "1"];

        var (code, output, error) = ConsoleCapture.Run([.. bench, "--json"]);
        Assert.True(code == 0, error);
        var json = JsonNode.Parse(output.Trim().Split('\n')[^1])!;
        Assert.InRange((double)json["router_input_cosine_consecutive"]!, 0.5, 1.0);
        Assert.Equal(0.3, (double)json["layer_update_scale"]!, 6);

        (code, output, error) = ConsoleCapture.Run(bench);
        Assert.True(code == 0, error);
        Assert.Contains("consecutive layers' router inputs (same pass): mean cosine 0.", output);
        Assert.Contains("model synthesized with layer update scale 0.3 ", output);
    }

    [MoeLab.Harness.Tests.Peers.FioFact]
    public void Each_timed_run_is_paired_with_a_replay_of_its_own_reads()
    {
        string model = Path.Combine(_dir, "tiny.gguf"), iolog = Path.Combine(_dir, "reads.iolog");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.Q8_0, Seed: 3), model);

        var (code, output, error) = ConsoleCapture.Run(["bench", "--model", model, "--budget", "200KiB", "-n", "6", "-r", "2", "-p", "0", "--warmup", "0", "--threads", "1", "--fio-replay", iolog, "--json"]);
        Assert.True(code == 0, error);
        var json = JsonNode.Parse(output.Trim().Split('\n')[^1])!;
        var runs = json["fio_replay_per_run"]!.AsArray();
        Assert.Equal(2, runs.Count);
        for (int r = 0; r < runs.Count; r++)
        {
            // The iolog of run r holds exactly the reads the figures count: this run's, not the warm-up's or the others'.
            string[] reads = [.. File.ReadLines(Path.Combine(_dir, $"reads.run{r + 1}.iolog")).Where(l => l.Contains(" read ", StringComparison.Ordinal))];
            Assert.Equal((int)runs[r]!["reads"]!, reads.Length);
            Assert.True(reads.Length > 0);
            Assert.Equal((long)runs[r]!["bytes"]!, reads.Sum(l => long.Parse(l.Split(' ')[^1], System.Globalization.CultureInfo.InvariantCulture)));
            double engine = (double)runs[r]!["engine_mb_per_s_while_reading"]!, fio = (double)runs[r]!["fio_mb_per_s"]!;
            Assert.True(engine > 0 && fio > 0);
            Assert.Equal(engine / fio, (double)runs[r]!["ratio"]!, 9);
            Assert.InRange((double)runs[r]!["engine_mean_depth"]!, 1, (int)json["queue_depth"]!);
            Assert.True((double)runs[r]!["engine_mean_latency_us"]! > 0 && (double)runs[r]!["fio_mean_depth"]! > 0);
        }

        // The runs' reads in flight: the missing depth's three parts add up to queue depth − mean depth (readers never
        // keep more than the queue depth), and busy time by depth adds up to the busy time.
        var depth = json["read_depth"]!;
        int queueDepth = (int)depth["queue_depth"]!;
        Assert.Equal((int)json["queue_depth"]!, queueDepth);
        double missing = (double)depth["missing_depth_demand_waiting"]! + (double)depth["missing_depth_prefetch_waiting"]! + (double)depth["missing_depth_queue_empty"]!;
        Assert.Equal(queueDepth - (double)depth["mean_depth"]!, missing, 6);
        Assert.Equal((double)depth["busy_s"]!, depth["busy_s_at_depth"]!.AsArray().Sum(x => (double)x!), 9);
        Assert.Equal(0, (double)depth["missing_depth_prefetch_waiting"]!); // no prefetcher
        Assert.InRange((int)depth["fio_at_engine_depth"]!["iodepth"]!, 1, queueDepth);
        Assert.True((double)depth["fio_at_engine_depth"]!["mb_per_s"]! > 0);
    }

    /// <summary>
    /// With --fio and --resident-baseline the all-in-RAM decode is timed alone and beside fio, alternated twice, and both
    /// rates and fio's come out of real runs (positive, and the printed ratio is theirs).
    /// </summary>
    [MoeLab.Harness.Tests.Peers.FioFact]
    public void The_all_in_RAM_decode_is_timed_alone_and_beside_fio()
    {
        string model = Path.Combine(_dir, "tiny.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, null, GgmlType.Q8_0, Seed: 3), model);

        var (code, output, error) = ConsoleCapture.Run(["bench", "--model", model, "--budget", "200KiB", "-n", "6", "-r", "1", "-p", "0", "--warmup", "0", "--threads", "1", "--resident-baseline", "--fio"]);
        Assert.True(code == 0, error);
        string line = output.Split('\n').Single(l => l.Contains("all-in-RAM decode alone and while fio randreads", StringComparison.Ordinal));
        var rounds = System.Text.RegularExpressions.Regex.Matches(line, @"([\d.]+) vs ([\d.]+) t/s \(fio (\d+) MB/s\) → ([\d.]+)");
        Assert.Equal(2, rounds.Count);
        foreach (System.Text.RegularExpressions.Match m in rounds)
        {
            double alone = double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            double beside = double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(alone > 0 && beside > 0 && int.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture) > 0);
            // printed rounded (rates to 0.1, the ratio to 0.001): a tolerance, not decimal places (0.8348 vs 0.835 round apart)
            Assert.Equal(beside / alone, double.Parse(m.Groups[4].Value, System.Globalization.CultureInfo.InvariantCulture), tolerance: 0.002);
        }
    }
}
