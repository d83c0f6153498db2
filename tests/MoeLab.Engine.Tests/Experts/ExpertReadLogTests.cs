using MoeLab.Engine.Experts;
using MoeLab.Engine.Io;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Tests.Experts;

public sealed class ExpertReadLogTests
{
    private const int Layers = 3;
    private const int Experts = 32;
    private const int TopK = 4;

    [Fact]
    public void KeepsIssueOrderIndexesFilesAndGrows()
    {
        var log = new ExpertReadLog(capacity: 2);
        log.Record("/m/a.gguf", 8192, 4096);
        log.Record("/m/b.gguf", 0, 12288);
        log.Record(string.Concat("/m/", "a.gguf"), 4096, 4096); // an equal path from another instance is the same file

        Assert.Equal(["/m/a.gguf", "/m/b.gguf"], log.Files);
        Assert.Equal([new DeviceRead(0, 8192, 4096), new DeviceRead(1, 0, 12288), new DeviceRead(0, 4096, 4096)], log.Reads.ToArray());
        Assert.Equal(20480, log.Bytes);
        log.Clear();
        Assert.Equal(0, log.Count);
        Assert.Equal(0, log.Bytes);
    }

    [Fact]
    public void CompletionsGiveTheMeanLatencyOfCompletedReadsOnly()
    {
        var log = new ExpertReadLog();
        long f = System.Diagnostics.Stopwatch.Frequency;
        int a = log.Record("/m/a.gguf", 0, 4096, issuedAt: 10 * f);
        int b = log.Record("/m/a.gguf", 4096, 4096, issuedAt: 11 * f);
        log.Record("/m/a.gguf", 8192, 4096, issuedAt: 12 * f); // never completes
        log.Complete(a, 12 * f);
        log.Complete(b, 15 * f);
        log.Complete(7, 20 * f); // not in the log: ignored
        Assert.Equal(3.0, log.MeanLatencySeconds, 9);
        Assert.Equal(15 * f, log.Reads[1].CompletedAt);
        Assert.Equal(0, log.Reads[2].CompletedAt);
    }

    [Fact]
    public void RecordingIntoAPresizedLogAllocatesNothing()
    {
        var log = new ExpertReadLog(capacity: 1000);
        const string path = "/m/a.gguf";
        log.Record(path, 0, 4096); // first use adds the file
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 1; i < 1000; i++) log.Record(path, i * 4096L, 4096);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(1000, log.Count);
    }

    [Theory]
    [InlineData(IoMode.Direct, 0)]
    [InlineData(IoMode.Direct, 8192)]
    [InlineData(IoMode.Buffered, 0)]
    public void StreamingSourceRecordsEveryReadOfEveryMissAndNothingElse(IoMode mode, long readChunk)
    {
        if (mode == IoMode.Direct && DirectIoProbe.Unsupported is not null) return;
        using var file = new SyntheticExpertFile(Layers, Experts, seed: 70);
        using var store = new ExpertStore(file.Layout, mode, readChunk);
        var options = new StreamingOptions { BudgetBytes = (TopK + 8) * store.BufferBytes, WorkingBuffers = TopK };
        var cache = new ArrayLru(StreamingExpertSource.CacheCapacity(store, options), Layers, Experts);
        using var source = new StreamingExpertSource(store, options, cache, new DemandFirstFifo(4));
        var misses = new MissRecorder();
        source.EventSink = misses;
        var log = new ExpertReadLog();
        var rng = new Random(70);

        void Run(int from, int tokens)
        {
            for (int t = from; t < from + tokens; t++)
            {
                source.BeginToken(t);
                for (int l = 0; l < Layers; l++)
                {
                    var chosen = Enumerable.Range(0, Experts).OrderBy(_ => rng.Next()).Take(TopK).ToArray();
                    source.Request(new RoutingObservation { Token = t, Layer = l, Experts = chosen, Weights = new float[TopK] });
                    foreach (int e in chosen)
                    {
                        source.Acquire(l, e);
                        source.Release(l, e);
                    }
                }
            }
        }

        Run(0, 5); // not recorded
        source.WaitIdle();
        misses.Keys.Clear();
        source.ReadLog = log;
        Run(5, 20);
        source.WaitIdle();
        source.ReadLog = null;
        Run(25, 5); // not recorded either

        // Exactly the reads of the recorded runs' misses: each expert's reads as the store places them.
        var expected = new List<(long, long)>();
        foreach (var (l, e) in misses.Keys.Take(misses.RecordedUntil))
        {
            for (int r = 0; r < store.Reads(0, l, e); r++)
            {
                unsafe
                {
                    var t = store.Target(0, l, e, r, null);
                    expected.Add((t.Start, t.Length));
                }
            }
        }

        Assert.True(misses.RecordedUntil > 10, "the recorded runs should miss");
        Assert.Equal([file.Path], log.Files);
        var recorded = log.Reads.ToArray().Select(x => (x.Offset, x.Length)).ToList();

        Assert.All(log.Reads.ToArray(), x => Assert.True(x.QueuedAt > 0 && x.IssuedAt >= x.QueuedAt && x.CompletedAt >= x.IssuedAt && !x.Prefetch));

        // Every recorded read is in the depth profile, never more than the queue depth in flight.
        var depth = ReadDepthProfile.Of(log.Reads, source.QueueDepth);
        Assert.Equal(log.Count, depth.Reads);
        Assert.InRange(depth.MeanDepth, 1, source.QueueDepth);
        Assert.Equal(0, depth.BelowSeconds[ReadDepthProfile.WaitingPrefetch]);

        // Demand-first FIFO without prefetch issues the misses in demand order, each expert's reads in file order.
        Assert.Equal(expected, recorded);
        if (mode == IoMode.Direct) Assert.All(recorded, x => Assert.True(x.Item1 % 4096 == 0 && x.Item2 % 4096 == 0));
        if (readChunk > 0) Assert.All(recorded, x => Assert.True(x.Item2 <= readChunk));
    }

    /// <summary>Misses in demand order; <see cref="RecordedUntil"/> marks the end of the recorded runs.</summary>
    private sealed class MissRecorder : IExpertEventSink
    {
        public List<(int Layer, int Expert)> Keys { get; } = [];

        public int RecordedUntil { get; private set; } = -1;

        public void OnExpert(in ExpertEvent e)
        {
            if (e.Token == 25 && RecordedUntil < 0) RecordedUntil = Keys.Count;
            if (e.Outcome == ExpertOutcome.Miss) Keys.Add((e.Layer, e.Expert));
        }
    }
}
