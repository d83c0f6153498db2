using System.Globalization;
using MathNet.Numerics.Statistics;
using System.Text.Json;
using System.Text.Json.Nodes;
using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Generation;
using MoeLab.Engine.Io;
using MoeLab.Engine.Sampling;
using MoeLab.Harness.Experiments;
using MoeLab.Harness.Peers;
using MoeLab.Strategies;

namespace MoeLab.Harness.Cli;

/// <summary>
/// <c>moelab bench</c>: decode speed (llama-bench's "tg": n tokens after a short prompt, greedy, repeated) with all
/// experts in RAM or streaming under a budget, and the peers to hold it against in the same session: llama-bench on
/// the same file and threads; fio at the streaming reads' block size and depth; the all-in-RAM engine as the
/// compute-bound token time (so token time can be set against max(I/O, compute)); and, under a fresh memory cgroup
/// that counts page cache, llama.cpp's mmap streaming of the same file at the same limit.
/// </summary>
public sealed class BenchCommand : ICliCommand
{
    public string Name => "bench";

    public string Summary => "measure decode tokens/s (tg) in RAM or streaming, against llama-bench, fio and llama.cpp mmap streaming";

    public string Usage =>
        "usage: moelab bench --model F.gguf [-n 64] [-p 64] [-r 3] [--warmup 3] [--threads N] [--prompt The]\n" +
        "                    [--budget 512MiB [--io direct|buffered] [--cache lru] [--prefetch none] [--io-scheduler fifo:queue_depth=8] [--read-chunk 256KiB] [--read-engine threads|aio]]\n" +
        "                    [--llama-bench /path/to/llama-bench]     all-in-RAM decode against llama.cpp's llama-bench\n" +
        "                    [--resident-baseline]                    also time the all-in-RAM engine (the compute-bound token time)\n" +
        "                    [--fio]                                  run fio randread (direct, libaio) at the streaming block size and depth\n" +
        "                    [--fio-replay reads.iolog]               record each timed run's device reads, write them as a fio iolog beside there\n" +
        "                                                             (reads.run1.iolog, …) and replay it with fio (direct, libaio, same depth) right\n" +
        "                                                             after its run: the disk on the engine's own pattern, paired run by run\n" +
        "                    [--memory-limit 900MiB [--llama-completion /path/to/llama-completion]]\n" +
        "                                                             run under a fresh cgroup-v1 memory limit that counts page cache;\n" +
        "                                                             with --llama-completion, llama.cpp's mmap streaming under the same limit\n" +
        "                    [--json]\n" +
        "Prints mean ± stddev tokens/s over r repetitions (after warm-up runs filling --warmup seconds, at least one) for decoding (tg n) and for evaluating a\n" +
        "p-token prompt of random token ids in chunks (pp p, as llama-bench -p p -n 0; -p 0 skips it); streaming runs add hit rate, MB read and\n" +
        "I/O time per token, the device MB/s achieved while reads were in flight, and stall time.";

    public int Run(CliArgs args)
    {
        var o = new Options
        {
            Model = args.Required("model"),
            Tokens = args.Int("n", 64),
            PromptTokens = args.Int("p", 64),
            Reps = args.Int("r", 3),
            WarmupSeconds = args.Double("warmup", 3),
            Threads = args.Int("threads", Environment.ProcessorCount),
            Prompt = args.Option("prompt") ?? "The",
            Budget = args.Option("budget") is { } b ? ParseSize("budget", b) : null,
            Io = args.Option("io") ?? "direct",
            Cache = args.Option("cache") ?? "lru",
            Prefetch = args.Option("prefetch") ?? "none",
            IoScheduler = args.Option("io-scheduler") ?? "fifo",
            ReadChunk = args.Option("read-chunk") is { } rc ? ParseSize("read-chunk", rc) : 0,
            ReadEngine = args.Option("read-engine") ?? "threads",
            FioReplay = args.Option("fio-replay"),
        };
        string? llamaBench = args.Option("llama-bench");
        bool residentBaseline = args.Flag("resident-baseline");
        bool fio = args.Flag("fio");
        long? memoryLimit = args.Option("memory-limit") is { } m ? ParseSize("memory-limit", m) : null;
        string? llamaCompletion = args.Option("llama-completion");
        bool json = args.Flag("json");
        args.EnsureAllUsed();
        args.EnsureNoPositional();
        if (o.Tokens < 1 || o.Reps < 1) throw new CliUsageException("-n and -r must be at least 1");
        if (o.WarmupSeconds < 0) throw new CliUsageException("--warmup is seconds of warm-up generation: 0 (one pass) or more");
        if (o.PromptTokens < 0) throw new CliUsageException("-p must be 0 (no prompt-processing run) or more");
        if (llamaCompletion is not null && memoryLimit is null) throw new CliUsageException("--llama-completion compares streaming under a memory limit: give --memory-limit too");
        if ((fio || residentBaseline || o.FioReplay is not null) && o.Budget is null) throw new CliUsageException("--fio, --fio-replay and --resident-baseline describe a streaming run: give --budget too");
        if (o.FioReplay is not null && (o.Io != "direct" || memoryLimit is not null)) throw new CliUsageException("--fio-replay replays direct reads in this process's run: use --io direct and no --memory-limit");

        if (memoryLimit is { } limit)
        {
            return UnderMemoryLimit(o, limit, llamaCompletion, json);
        }

        var ours = Measure(o, o.FioReplay is { } replayPath ? (log, depth, r) => ReplayRun(replayPath, log, depth, r) : null);
        if (o.FioReplay is { } lastLog && ours.ReadLog is { } last && ours.Replays.Count > 0)
        {
            // Beside (never instead of) the replays at the queue depth: the last run's reads at the engine's own mean depth.
            int depth = Math.Clamp((int)Math.Round(ours.Replays[^1].Depth.MeanDepth), 1, ours.Streaming!.QueueDepth);
            ours.DepthReplay = (depth, Fio.Replay(Path.GetFullPath(ReplayPath(lastLog, ours.Replays.Count - 1)), depth, last.LargestRead));
        }

        if (json)
        {
            Console.WriteLine(ours.ToJson().ToJsonString());
            return 0;
        }

        Console.WriteLine("| model | experts | threads | test | t/s |");
        Console.WriteLine("| --- | --- | ---: | --- | ---: |");
        Console.WriteLine(Inv($"| {Path.GetFileName(o.Model)} | {ours.ExpertsLabel} | {o.Threads} | tg{o.Tokens} | {ours.Mean:F2} ± {ours.Std:F2} |"));
        if (ours.PromptSpeeds.Count > 0)
        {
            Console.WriteLine(Inv($"| {Path.GetFileName(o.Model)} | {ours.ExpertsLabel} | {o.Threads} | pp{o.PromptTokens} | {ours.PromptMean:F2} ± {Std(ours.PromptSpeeds):F2} |"));
        }

        Measurement? resident = null;
        if (residentBaseline)
        {
            resident = Measure(o with { Budget = null });
            Console.WriteLine(Inv($"| {Path.GetFileName(o.Model)} | {resident.ExpertsLabel} | {o.Threads} | tg{o.Tokens} | {resident.Mean:F2} ± {resident.Std:F2} |"));
        }

        Console.WriteLine(ours.Layouts);
        if (ours.LayerUpdateScale is { } scale)
        {
            // A synthesized model with damped block updates (model synth --layer-update-scale): say so beside every figure.
            Console.WriteLine(Inv($"model synthesized with layer update scale {scale:G4} ({MoeLab.Engine.Model.SynthOptions.LayerUpdateScaleKey}): random weights with damped block updates, not a trained model"));
        }
        if (llamaBench is not null)
        {
            double theirs = LlamaCpp.BenchDecode(llamaBench, o.Model, o.Tokens, o.Reps, o.Threads);
            Console.WriteLine(Inv($"| {Path.GetFileName(o.Model)} | llama.cpp (llama-bench, mmap, default repack) | {o.Threads} | tg{o.Tokens} | {theirs:F2} |"));
            Console.WriteLine(Inv($"MoeLab / llama.cpp = {ours.Mean / theirs:F3}"));
            if (o.PromptTokens > 0)
            {
                double theirsPp = LlamaCpp.BenchPrompt(llamaBench, o.Model, o.PromptTokens, o.Reps, o.Threads);
                Console.WriteLine(Inv($"| {Path.GetFileName(o.Model)} | llama.cpp (llama-bench, mmap, default repack) | {o.Threads} | pp{o.PromptTokens} | {theirsPp:F2} |"));
                Console.WriteLine(Inv($"MoeLab / llama.cpp (pp{o.PromptTokens}) = {ours.PromptMean / theirsPp:F3}"));
            }
        }

        if (ours.Streaming is { } s)
        {
            // The all-in-RAM engine the beside-measurements below decode with, loaded once for both.
            using var beside = resident is not null && (o.FioReplay is not null || fio) ? new ResidentDecoder(o) : null;
            Console.WriteLine();
            Console.WriteLine(Inv($"streaming ({ours.ExpertsLabel}, queue depth {s.QueueDepth}, {s.ReadEngine} readers, reads of {s.SliceTransferBytes} B), per token over {ours.TokensMeasured} measured tokens:"));
            Console.WriteLine(Inv($"  hit rate {s.HitRate:P1}; {s.BytesReadPerToken / 1e6:F2} MB of experts read ({s.BytesTransferredPerToken / 1e6:F2} MB transferred by the device)"));
            // 4 KiB pages cost direct reads (a page pinned per 4 KiB) and the kernels (TLB): say whether the huge-page advice took.
            Console.WriteLine(Inv($"  expert buffers {s.SlabBytes / 1048576.0:F0} MiB, {(s.SlabHugePageBytes < 0 ? "unknown" : Inv($"{s.SlabHugePageBytes / 1048576.0:F0} MiB"))} of them in transparent huge pages after the runs"));
            var c = s.Counters;
            if (c.DemandReads > 0)
            {
                // Serial gaps on the I/O side: a needed read waiting for a reader (behind other reads), and a reader's wake-up.
                Console.WriteLine(Inv($"  demand reads waited for a reader {c.DemandQueueSeconds / ours.TokensMeasured * 1e3:F2} ms per token ({c.DemandReads / (double)ours.TokensMeasured:F1} reads, {c.DemandQueueSeconds / c.DemandReads * 1e6:F0} µs each); demands made with no read queued or in flight started after {(c.IdleIssues == 0 ? 0 : c.IdleIssueSeconds / c.IdleIssues * 1e6):F0} µs ({c.IdleIssues / (double)ours.TokensMeasured:F1} per token: the readers' wake-up)"));
            }

            if (c.PrefetchIssued + c.PrefetchCancelled > 0)
            {
                // Accuracy of the guesses that cost a read: how many of them a router then asked for before eviction.
                Console.WriteLine(Inv($"  prefetch: {c.PrefetchIssued / (double)ours.TokensMeasured:F1} reads issued per token, {c.PrefetchHits / (double)ours.TokensMeasured:F1} demanded (accuracy {(c.PrefetchIssued == 0 ? 0 : (double)c.PrefetchHits / c.PrefetchIssued):P1}), {c.PrefetchUnused / (double)ours.TokensMeasured:F1} evicted unused, {c.PrefetchCancelled / (double)ours.TokensMeasured:F1} cancelled before issue"));
            }

            Console.WriteLine(Inv($"  token {s.TokenMs:F1} ms = compute {s.TokenMs - s.StallMs:F1} + stall {s.StallMs:F1}; reads in flight {s.IoBusyMs:F1} ms → {s.DeviceMBps:F0} MB/s achieved while reading"));
            Console.WriteLine(Inv($"  token / max(I/O busy, compute outside stalls) = {s.TokenMs / Math.Max(s.IoBusyMs, s.TokenMs - s.StallMs):F3}"));
            Console.WriteLine(Inv($"  with no read in flight (16-token greedy pass after the runs: token {s.ProbeTokenMs:F1} ms, reads in flight {s.ProbeIoBusyMs:F1} ms): output head {s.HeadMs:F1} ms, attention {s.AttentionMs:F1} ms, rest (routers, expert compute while no read is in flight) {s.ProbeTokenMs - s.ProbeIoBusyMs - s.HeadMs - s.AttentionMs:F1} ms"));
            Console.WriteLine(Inv($"  consecutive layers' router inputs (same pass): mean cosine {s.RouterInputCosine:F3} (how little each block changes the residual stream; next-gate guesses from it)"));
            Console.WriteLine(Inv($"  token / (I/O busy + output head + attention) = {s.ProbeTokenMs / (s.ProbeIoBusyMs + s.HeadMs + s.AttentionMs):F3} (the bound without a predictor: a layer's reads start after its router)"));
            if (resident is not null)
            {
                double computeMs = 1e3 / resident.Mean;
                Console.WriteLine(Inv($"  all-in-RAM token {computeMs:F1} ms: token / max(I/O busy, all-in-RAM token) = {s.TokenMs / Math.Max(s.IoBusyMs, computeMs):F3}"));
            }

            if (o.FioReplay is { } iolog && ours.ReadLog is { } log)
            {
                // The same reads, same order, same depth, as fast as the disk serves them: what "achieved while reading"
                // can reach. Each repetition is paired with its own replay, run right after it.
                Console.WriteLine(Inv($"  fio replay of each timed run's reads, right after it (iodepth={s.QueueDepth} direct libaio, as fast as the depth allows, {FioBuffers(ours.Replays.All(p => p.Fio.HugePageBuffers), log.LargestRead * s.QueueDepth)}; iologs {ReplayPath(iolog, 0)}…):"));
                foreach (var (p, r) in ours.Replays.Select((p, r) => (p, r)))
                {
                    Console.WriteLine(Inv($"    run {r + 1}: {p.Reads} reads, {p.Bytes / 1e6:F0} MB; engine {p.EngineMBps:F0} MB/s while reading, fio {p.Fio.MegabytesPerSecond:F0} MB/s (mean latency {p.Fio.MeanLatencyMicroseconds:F0} µs) → {p.Ratio:F3}"));
                }

                var ratios = ours.Replays.Select(p => p.Ratio).ToArray();
                Console.WriteLine(Inv($"  achieved while reading / fio replay, paired per run: median {ratios.Median():F3}, range {ratios.Min():F3}–{ratios.Max():F3}"));
                PrintReadDepth(ours, s.QueueDepth);
                if (resident is not null)
                {
                    ours.UnderDecode = ReplayUnderDecode(beside!, Path.GetFullPath(ReplayPath(iolog, ours.Replays.Count - 1)), s.QueueDepth, log.LargestRead);
                    var u = ours.UnderDecode;
                    double underDecode = u.Select(x => x.UnderDecode.MegabytesPerSecond).ToArray().Median();
                    Console.WriteLine(Inv($"  fio replay of the last run at iodepth={s.QueueDepth}, alone and while the all-in-RAM engine decodes on {o.Threads} threads, alternated: {string.Join(", ", u.Select(x => Inv($"{x.Alone.MegabytesPerSecond:F0} vs {x.UnderDecode.MegabytesPerSecond:F0} MB/s ({x.Alone.MeanLatencyMicroseconds:F0} vs {x.UnderDecode.MeanLatencyMicroseconds:F0} µs) → {x.UnderDecode.MegabytesPerSecond / x.Alone.MegabytesPerSecond:F3}")))}"));
                    Console.WriteLine(Inv($"  achieved while reading (last run {ours.Replays[^1].EngineMBps:F0} MB/s) / fio replay under decode (median {underDecode:F0} MB/s) = {ours.Replays[^1].EngineMBps / underDecode:F3} (beside, not instead of, the idle replay's ratio)"));
                }

                // The last run's reads at the engine's own issue times (bursts and compute gaps kept): per-read latency, like for like.
                string timedLog = Path.ChangeExtension(iolog, null) + ".timed" + Path.GetExtension(iolog);
                using (var w = new StreamWriter(timedLog)) Fio.WriteIolog(w, log, timed: true);
                var ft = Fio.Replay(Path.GetFullPath(timedLog), s.QueueDepth, log.LargestRead);
                double engineUs = log.MeanLatencySeconds * 1e6;
                Console.WriteLine(Inv($"  fio replay of the last run at the engine's issue times ({timedLog}): mean latency {ft.MeanLatencyMicroseconds:F0} µs per read; the engine's {engineUs:F0} µs (issue to completion) → engine / fio = {engineUs / ft.MeanLatencyMicroseconds:F3}"));
            }

            if (fio)
            {
                long block = s.SliceTransferBytes;
                var f = Fio.RandomRead(o.Model, block, s.QueueDepth, seconds: 5);
                double ioAtFioMs = s.BytesTransferredPerToken / (f.MegabytesPerSecond * 1e6) * 1e3;
                Console.WriteLine(Inv($"  fio randread bs={block} iodepth={s.QueueDepth} direct libaio, {FioBuffers(f.HugePageBuffers, block * s.QueueDepth)}: {f.MegabytesPerSecond:F0} MB/s (mean latency {f.MeanLatencyMicroseconds:F0} µs)"));
                Console.WriteLine(Inv($"  achieved while reading / fio = {s.DeviceMBps / f.MegabytesPerSecond:F3}; this token's reads at fio's rate take {ioAtFioMs:F1} ms"));
                if (resident is not null)
                {
                    Console.WriteLine(Inv($"  token / max(reads at fio's rate, all-in-RAM token) = {s.TokenMs / Math.Max(ioAtFioMs, 1e3 / resident.Mean):F3}"));
                    var d = DecodeBesideFio(beside!, o.Model, block, s.QueueDepth);
                    Console.WriteLine(Inv($"  all-in-RAM decode alone and while fio randreads beside it (bs={block} iodepth={s.QueueDepth}), {DecodeWindowSeconds:F0} s each, alternated: {string.Join(", ", d.Select(x => Inv($"{x.Alone:F1} vs {x.BesideFio:F1} t/s (fio {x.Fio.MegabytesPerSecond:F0} MB/s) → {x.BesideFio / x.Alone:F3}")))}"));
                    Console.WriteLine("    (the converse of fio under decode: where reads slow compute too, I/O and compute cannot overlap at their idle rates)");
                }
            }
        }

        return 0;
    }

    /// <summary>
    /// Why "achieved while reading" falls short of fio's replay, from the runs' read logs: by Little's law a rate is mean
    /// reads in flight × read size / latency, so the gap is fewer reads in flight (the queue not kept full) times
    /// slower reads (each read's latency against fio's). Then the last run's reads replayed at the engine's own mean
    /// depth: fio's latency there is what a read costs at that depth, so engine / fio latency is the per-read overhead.
    /// </summary>
    private static void PrintReadDepth(Measurement ours, int queueDepth)
    {
        var all = ours.Replays.Select(p => p.Depth).Aggregate((a, b) => a + b);
        double fioDepth = ours.Replays.Select(p => p.FioDepth).ToArray().Median();
        double fioLatency = ours.Replays.Select(p => p.Fio.MeanLatencyMicroseconds).ToArray().Median();
        double engineLatency = all.MeanLatencySeconds * 1e6;
        Console.WriteLine(Inv($"  reads in flight while reading (read logs of the {ours.Replays.Count} runs, {all.Reads} reads, busy {all.BusySeconds * 1e3:F0} ms): mean {all.MeanDepth:F2} of {queueDepth}; by depth 1..{queueDepth}: {string.Join(" ", all.SecondsAtDepth.Skip(1).Select(x => Inv($"{x / all.BusySeconds:P0}")))} of busy time"));
        Console.WriteLine(Inv($"  below depth {queueDepth} {all.BelowFraction:P0} of busy time; missing depth {queueDepth - all.MeanDepth:F2} = {all.MissingDepth(ReadDepthProfile.WaitingDemand):F2} while a demand read waited for a reader + {all.MissingDepth(ReadDepthProfile.WaitingPrefetch):F2} while only prefetches waited + {all.MissingDepth(ReadDepthProfile.Empty):F2} with nothing queued"));
        Console.WriteLine(Inv($"  read latency (issue to completion): engine {engineLatency:F0} µs, fio replay {fioLatency:F0} µs at a mean depth of {fioDepth:F2} (medians over runs) → log rate / fio = depth {all.MeanDepth / fioDepth:F3} × latency {fioLatency / engineLatency:F3} = {all.MeanDepth / fioDepth * (fioLatency / engineLatency):F3}"));
        if (ours.DepthReplay is not { } dr) return;
        var (depth, f) = dr;
        double lastLatency = ours.Replays[^1].Depth.MeanLatencySeconds * 1e6;
        Console.WriteLine(Inv($"  beside it, fio replay of the last run at iodepth={depth} (that run's mean depth, rounded): {f.MegabytesPerSecond:F0} MB/s, mean latency {f.MeanLatencyMicroseconds:F0} µs; the engine's {lastLatency:F0} µs in that run → engine / fio latency at its own depth = {lastLatency / f.MeanLatencyMicroseconds:F3}"));
    }

    /// <summary>
    /// fio replaying <paramref name="iolog"/> at <paramref name="depth"/>, alone and while the all-in-RAM engine decodes
    /// on the bench's threads, alternated twice (A B A B): the streaming engine reads while it computes, the idle replay
    /// does not, and on a VM the disk's rate can drop under compute (host memory bandwidth and CPUs are shared).
    /// </summary>
    private static List<(Fio.ReplayResult Alone, Fio.ReplayResult UnderDecode)> ReplayUnderDecode(ResidentDecoder decoder, string iolog, int depth, long largestRead)
    {
        var rounds = new List<(Fio.ReplayResult, Fio.ReplayResult)>();
        for (int round = 0; round < 2; round++)
        {
            var alone = Fio.Replay(iolog, depth, largestRead);
            bool stop = false;
            var decode = new Thread(() =>
            {
                while (!Volatile.Read(ref stop)) decoder.Pass();
            }) { Name = "moelab-bench-decode" };
            decode.Start();
            Thread.Sleep(300); // fio starts once decoding runs
            var underDecode = Fio.Replay(iolog, depth, largestRead);
            Volatile.Write(ref stop, true);
            decode.Join();
            rounds.Add((alone, underDecode));
        }

        return rounds;
    }

    private const double DecodeWindowSeconds = 3;

    /// <summary>
    /// The all-in-RAM engine's decode rate alone and while fio randreads the model file beside it, alternated twice
    /// (A B A B). fio costs the guest little CPU (~0.25 of a core at 9 GB/s here), so a drop is the reads' cost below the
    /// guest (a VM's disk copied through host memory and CPUs), which the streaming engine pays on every overlapped read.
    /// </summary>
    private static List<(double Alone, double BesideFio, Fio.Result Fio)> DecodeBesideFio(ResidentDecoder decoder, string model, long block, int depth)
    {
        _ = DecodeRate(0.5); // warm-up
        var rounds = new List<(double, double, Fio.Result)>();
        for (int round = 0; round < 2; round++)
        {
            double alone = DecodeRate(DecodeWindowSeconds);
            Fio.Result? f = null;
            var reader = new Thread(() => f = Fio.RandomRead(model, block, depth, DecodeWindowSeconds + 1.5, rampSeconds: 0.5)) { Name = "moelab-bench-fio" };
            reader.Start();
            Thread.Sleep(1000); // fio started and past its ramp: the window below lies inside its measured run
            double beside = DecodeRate(DecodeWindowSeconds);
            reader.Join();
            rounds.Add((alone, beside, f ?? throw new InvalidOperationException("fio gave no result")));
        }

        return rounds;

        // Generated tokens over their forward passes' time (prefill excluded), whole generations until the window is used.
        double DecodeRate(double seconds)
        {
            long tokens = 0;
            double decode = 0;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.Elapsed.TotalSeconds < seconds)
            {
                var g = decoder.Pass();
                tokens += g.Generated.Length;
                decode += g.DecodeSeconds;
            }

            return tokens / decode;
        }
    }

    /// <summary>The all-in-RAM engine at the bench's threads and context, decoding the bench's prompt greedily, pass after pass.</summary>
    private sealed class ResidentDecoder : IDisposable
    {
        private readonly Options _o;
        private readonly EngineSession _session;
        private readonly Sampler _sampler;

        public ResidentDecoder(Options o)
        {
            _o = o;
            _session = EngineSession.Open(o.Model, new EngineSettings { BudgetBytes = null, IoMode = o.Io, Threads = o.Threads, MaxContext = BenchContext(o) });
            _sampler = new Sampler(_session.Model.Config.Vocab, SamplerOptions.Greedy);
        }

        public GenerationResult Pass() => BenchCommand.Pass(_session, _sampler, _o);

        public void Dispose() => _session.Dispose();
    }

    /// <summary>One timed generation from a fresh sequence: the bench's prompt, its tokens, never stopping early.</summary>
    private static GenerationResult Pass(EngineSession session, Sampler sampler, Options o)
    {
        session.Model.Reset();
        return session.Generator.Generate(o.Prompt, o.Tokens, sampler, stopAtEndOfGeneration: false);
    }

    /// <summary>Runs this same bench in a child process inside a fresh memory cgroup, then llama.cpp's mmap streaming under the same limit.</summary>
    private static int UnderMemoryLimit(Options o, long limit, string? llamaCompletion, bool json)
    {
        var timeout = TimeSpan.FromMinutes(30);
        DropPageCache(o.Model);
        var (program, prefix) = SelfInvocation();
        var childArgs = new List<string>(prefix)
        {
            "bench", "--model", o.Model, "-n", Inv($"{o.Tokens}"), "-p", Inv($"{o.PromptTokens}"), "-r", Inv($"{o.Reps}"), "--warmup", Inv($"{o.WarmupSeconds}"), "--threads", Inv($"{o.Threads}"), "--prompt", o.Prompt,
            "--io", o.Io, "--cache", o.Cache, "--prefetch", o.Prefetch, "--io-scheduler", o.IoScheduler, "--json",
        };
        if (o.Budget is { } b) childArgs.AddRange(["--budget", ByteSize.Format(b)]);
        if (o.ReadChunk > 0) childArgs.AddRange(["--read-chunk", Inv($"{o.ReadChunk}")]);
        childArgs.AddRange(["--read-engine", o.ReadEngine]);
        var run = MemoryLimitedProcess.Run(limit, program, childArgs, timeout);
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException(run.OomKilled
                ? $"MoeLab was OOM-killed under the {ByteSize.Format(limit)} limit (peak {ByteSize.Format(run.PeakBytes)}): lower --budget"
                : $"the MoeLab bench child exited {run.ExitCode}: {LlamaCpp.Tail(run.Stderr)}");
        }

        var ours = JsonNode.Parse(run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1])!.AsObject();
        ours["memory_limit_bytes"] = limit;
        ours["cgroup_peak_bytes"] = run.PeakBytes;
        double oursTps = ours["tokens_per_s_mean"]!.GetValue<double>();
        JsonObject? theirs = null;
        if (llamaCompletion is not null)
        {
            // Cold start for both: llama.cpp's reads must come from the disk, as ours do.
            DropPageCache(o.Model);
            var speeds = new List<double>();
            long peak = 0;
            string? failure = null;
            for (int r = 0; r < o.Reps && failure is null; r++)
            {
                var l = MemoryLimitedProcess.Run(limit, llamaCompletion, LlamaCpp.MmapCompletionArguments(o.Model, o.Prompt, o.Tokens, o.Threads), timeout);
                peak = Math.Max(peak, l.PeakBytes);
                if (l.ExitCode != 0)
                {
                    failure = l.OomKilled ? $"OOM-killed under the limit (peak {ByteSize.Format(l.PeakBytes)})" : $"exited {l.ExitCode}: {LlamaCpp.Tail(l.Stderr)}";
                }
                else
                {
                    speeds.Add(LlamaCpp.ParseDecodeTokensPerSecond(l.Stderr + "\n" + l.Stdout));
                }
            }

            theirs = new JsonObject
            {
                ["tool"] = "llama-completion (mmap, --no-repack, --no-warmup)",
                ["tokens_per_s_mean"] = speeds.Count > 0 ? speeds.Average() : null,
                ["tokens_per_s_std"] = Std(speeds),
                ["cgroup_peak_bytes"] = peak,
                ["failure"] = failure,
            };
        }

        if (json)
        {
            Console.WriteLine(new JsonObject { ["moelab"] = ours, ["llama_cpp_mmap"] = theirs }.ToJsonString());
            return 0;
        }

        Console.WriteLine(Inv($"under a {ByteSize.Format(limit)} memory cgroup (page cache counted), page cache of {Path.GetFileName(o.Model)} dropped before each side, tg{o.Tokens} x{o.Reps}, {o.Threads} threads:"));
        // The group's peak counts page cache (the resident weights' load, llama.cpp's mmapped pages), so it reaches the
        // limit whenever reclaim had to work; peak RSS is the process's own memory.
        Console.WriteLine("| engine | t/s | cgroup peak (incl. page cache) | peak RSS |");
        Console.WriteLine("| --- | ---: | ---: | ---: |");
        Console.WriteLine(Inv($"| MoeLab ({ours["experts"]}) | {oursTps:F2} ± {ours["tokens_per_s_std"]!.GetValue<double>():F2} | {ByteSize.Format(run.PeakBytes)} | {ByteSize.Format(ours["peak_rss_bytes"]!.GetValue<long>())} |"));
        if (theirs is not null)
        {
            if (theirs["failure"] is { } f)
            {
                Console.WriteLine(Inv($"| llama.cpp mmap | failed: {f} | {ByteSize.Format(theirs["cgroup_peak_bytes"]!.GetValue<long>())} | |"));
            }
            else
            {
                double t = theirs["tokens_per_s_mean"]!.GetValue<double>();
                Console.WriteLine(Inv($"| llama.cpp mmap (no repack) | {t:F2} ± {theirs["tokens_per_s_std"]!.GetValue<double>():F2} | {ByteSize.Format(theirs["cgroup_peak_bytes"]!.GetValue<long>())} | (mapped file pages) |"));
                Console.WriteLine(Inv($"MoeLab / llama.cpp mmap = {oursTps / t:F2}x"));
            }
        }

        return 0;
    }

    /// <param name="replay">With --fio-replay: called after each timed repetition with that repetition's reads (the
    /// log is reused: consume it before returning), the queue depth and the repetition's index; the figures are kept in <see cref="Measurement.Replays"/>.</param>
    private static Measurement Measure(Options o, Func<ExpertReadLog, int, int, Fio.ReplayResult>? replay = null)
    {
        // The oracle prefetcher and belady read the future: record it from one identical greedy run first (same
        // prompt, same tokens, so the same routing in every repetition after a reset).
        MoeLab.Engine.Telemetry.RoutingTrace? future = null;
        if (o.Budget is not null && (StrategySpec.Parse(o.Prefetch).Name == "oracle" || StrategySpec.Parse(o.Cache).Name == "belady"))
        {
            var file = MoeLab.Engine.Gguf.GgufFile.Open(o.Model);
            var config = MoeLab.Engine.Model.ModelConfig.FromGguf(file);
            var recorder = new MoeLab.Engine.Telemetry.RoutingTraceRecorder(MoeLab.Engine.Model.ExpertTensors.Layout(file, config).Layers, config.Experts);
            using var recording = EngineSession.Open(o.Model, new EngineSettings { BudgetBytes = o.Budget, IoMode = o.Io, Threads = o.Threads, Observer = recorder });
            recording.Generator.Generate(o.Prompt, o.Tokens, new Sampler(recording.Model.Config.Vocab, SamplerOptions.Greedy), stopAtEndOfGeneration: false);
            future = recorder.Build();
        }

        var speeds = new List<double>();
        var counters = default(ExpertSourceCounters);
        double wall = 0, stall = 0;
        int tokens = 0;
        using var session = EngineSession.Open(o.Model, new EngineSettings
        {
            BudgetBytes = o.Budget, IoMode = o.Io, Cache = o.Cache, Prefetch = o.Prefetch, Io = o.IoScheduler, Threads = o.Threads, Future = future, ReadChunkBytes = o.ReadChunk, ReadEngine = o.ReadEngine,
            MaxContext = BenchContext(o),
        });
        var sampler = new Sampler(session.Model.Config.Vocab, SamplerOptions.Greedy);
        var readLog = o.FioReplay is not null && session.Streaming is not null ? new ExpertReadLog(1 << 16) : null;
        // Warm up for WarmupSeconds, not one pass: tiered JIT compiles the hot paths on a background thread during the
        // first second or so, and on 2 CPUs it takes a core from a 2-thread decode (one warm-up pass left the 2-thread
        // repetitions swinging ±20% while 1 thread, with a core to spare, held ±1%).
        var warmup = System.Diagnostics.Stopwatch.StartNew();
        for (int pass = 0; pass == 0 || (warmup.Elapsed.TotalSeconds < o.WarmupSeconds && pass < 1000); pass++)
        {
            Pass(session, sampler, o);
        }

        var pairs = new List<ReplayPair>();
        for (int r = 0; r < o.Reps; r++)
        {
            var before = default(ExpertSourceCounters);
            if (readLog is not null)
            {
                // Record this repetition's reads only (the previous run's last prefetches land first).
                session.Streaming!.WaitIdle();
                readLog.Clear();
                session.Streaming.ReadLog = readLog;
                before = session.Streaming.Counters;
            }

            var result = Pass(session, sampler, o);
            speeds.Add(result.TokensPerSecond);
            counters += result.DecodeExperts;
            wall += result.DecodeSeconds;
            stall += result.DecodeStallSeconds;
            tokens += result.Generated.Length;
            if (readLog is not null && replay is not null)
            {
                // The disk drifts 2–4× within minutes on shared VMs: replay this repetition's own reads right after it,
                // so each ratio sets the engine against the disk as it was within about a second.
                session.Streaming!.WaitIdle();
                session.Streaming.ReadLog = null;
                var d = session.Streaming.Counters - before;
                var depth = ReadDepthProfile.Of(readLog.Reads, session.Streaming.QueueDepth);
                var f = replay(readLog, session.Streaming.QueueDepth, r);
                pairs.Add(new ReplayPair(d.IoBusySeconds > 0 ? d.BytesTransferred / d.IoBusySeconds / 1e6 : 0, f, readLog.Count, readLog.Bytes, depth));
            }
        }

        if (readLog is not null) session.Streaming!.ReadLog = null;

        // Where a streamed token's time goes, from a short greedy pass after the timed runs: the output head and the
        // token mixers run with no expert read in flight (without a predictor a read cannot start before its router).
        var serial = session.Streaming is { } probed ? SerialCompute(session.Model, probed, 16) : default;
        var promptSpeeds = MeasurePrompt(session.Model, o.PromptTokens, o.Reps);
        string label = session.IoModeLabel + (o.Budget is { } bb ? " " + ByteSize.Format(bb) : "");
        StreamingFigures? streaming = null;
        if (session.Streaming is { } source && tokens > 0)
        {
            // Direct reads transfer each slice's covering 4 KiB-aligned range (or equal pieces of it with --read-chunk):
            // fio reads the block size of an expert's first read.
            long aligned = source.Store.ReadBytes(0, 0, 0, 0);
            streaming = new StreamingFigures(
                source.QueueDepth, counters.HitRate, (double)counters.BytesRead / tokens, (double)counters.BytesTransferred / tokens,
                wall / tokens * 1e3, stall / tokens * 1e3, counters.IoBusySeconds / tokens * 1e3,
                counters.IoBusySeconds > 0 ? counters.BytesTransferred / counters.IoBusySeconds / 1e6 : 0, aligned)
            {
                Counters = counters, ReadEngine = source.ReadEngine.Name(), HeadMs = serial.HeadMs, AttentionMs = serial.AttentionMs, ProbeTokenMs = serial.TokenMs, ProbeIoBusyMs = serial.IoBusyMs, RouterInputCosine = serial.RouterInputCosine,
                SlabBytes = source.SlabBytes, SlabHugePageBytes = source.SlabHugePageBytes,
            };
        }

        long expertsInterleaved = session.Model.ExpertSource is MoeLab.Engine.Experts.ResidentExpertSource residentSource ? residentSource.InterleavedBytes : 0;
        return new Measurement(label, speeds, tokens, streaming)
        {
            LayerUpdateScale = MoeLab.Engine.Model.SynthOptions.LayerUpdateScaleOf(session.Model.File),
            ReadLog = readLog,
            Replays = pairs,
            PromptSpeeds = promptSpeeds,
            Layouts = Inv($"weight layout: {session.Model.InterleavedResidentBytes / 1048576.0:F1} MiB of resident matrices and {expertsInterleaved / 1048576.0:F1} MiB of experts repacked at load into 8-row interleaved groups (Q4_0, Q4_K on AVX2); everything else as the GGUF lays it out{(session.Streaming is null ? "" : " (streamed experts always)")}"),
        };
    }

    /// <summary>Writes one repetition's reads as a fio iolog beside <paramref name="iolog"/> and replays it at the log's depth.</summary>
    private static Fio.ReplayResult ReplayRun(string iolog, ExpertReadLog log, int depth, int rep)
    {
        string path = Path.GetFullPath(ReplayPath(iolog, rep));
        using (var w = new StreamWriter(path)) Fio.WriteIolog(w, log);
        return Fio.Replay(path, depth, log.LargestRead);
    }

    /// <summary>
    /// Which pages fio read into. The engine's streaming slab is in huge pages, and an O_DIRECT read into 4 KiB pages pins
    /// each one: fio ran 2–3× slower that way on the dev VM, so the figure is then no like-for-like and says how to fix it.
    /// </summary>
    private static string FioBuffers(bool huge, long bufferBytes) => huge
        ? "buffers in huge pages, like the engine's slab"
        : Inv($"buffers in 4 KiB pages, NOT like the engine's huge pages (fio is slower so: as root, echo {Fio.HugePagesNeeded(bufferBytes)} > /proc/sys/vm/nr_hugepages)");

    /// <summary>reads.iolog → reads.run1.iolog, …</summary>
    private static string ReplayPath(string iolog, int rep) => Path.ChangeExtension(iolog, null) + Inv($".run{rep + 1}") + Path.GetExtension(iolog);

    /// <summary>
    /// The context the runs need, as llama-bench sizes its own (n_ctx = n_prompt + n_gen) rather than the engine's
    /// default 4096: a KV cache sized for 4096 positions made 1-thread q8_0 decode 12% slower on the dev VM (KV rows
    /// of a head 2 MiB apart), a cost the comparison would otherwise charge to one side only. The prompt has at most one
    /// token per UTF-8 byte, plus a few special tokens.
    /// </summary>
    private static int BenchContext(Options o) =>
        Math.Max(o.PromptTokens, System.Text.Encoding.UTF8.GetByteCount(o.Prompt) + 8 + o.Tokens) + 16;

    /// <summary>
    /// Per-token means over <paramref name="tokens"/> greedy decode steps from a reset model: wall, output head, token
    /// mixers, the time with expert reads in flight, and the mean cosine between consecutive layers' router inputs.
    /// </summary>
    private static (double TokenMs, double HeadMs, double AttentionMs, double IoBusyMs, double RouterInputCosine) SerialCompute(MoeLab.Engine.Model.MoeModel model, StreamingExpertSource source, int tokens)
    {
        model.Reset();
        var before = source.Counters;
        // How much each block changes the residual stream, from the same pass (what makes next-gate guesses good or bad).
        var similarity = new MoeLab.Engine.Telemetry.RouterInputSimilarity(model.Config.Hidden);
        model.RouterInputs = similarity;
        double wall = 0, head = 0, attention = 0;
        int token = 1;
        for (int t = 0; t < tokens; t++)
        {
            var logits = model.Forward(token);
            wall += model.LastWallSeconds;
            head += model.LastHeadSeconds;
            attention += model.LastAttentionSeconds;
            token = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits);
        }

        double busy = source.Counters.IoBusySeconds - before.IoBusySeconds;
        model.RouterInputs = null;
        model.Reset();
        return (wall / tokens * 1e3, head / tokens * 1e3, attention / tokens * 1e3, busy / tokens * 1e3, similarity.Mean);
    }

    /// <summary>
    /// Prompt processing (llama-bench's "pp"): a prompt of <paramref name="length"/> random token ids evaluated from
    /// position 0 by <see cref="MoeLab.Engine.Model.MoeModel.ForwardPrompt"/>, one warm-up then <paramref name="reps"/>
    /// timed runs; tokens/s = length / wall time of the call.
    /// </summary>
    private static List<double> MeasurePrompt(MoeLab.Engine.Model.MoeModel model, int length, int reps)
    {
        var speeds = new List<double>();
        if (length == 0) return speeds;
        if (length > model.MaxContext) throw new CliUsageException($"-p {length} exceeds the model's {model.MaxContext}-token context");
        var rng = new Random(1);
        int[] prompt = [.. Enumerable.Range(0, length).Select(_ => rng.Next(model.Config.Vocab))];
        for (int r = -1; r < reps; r++)
        {
            model.Reset();
            model.ForwardPrompt(prompt);
            if (r >= 0) speeds.Add(length / model.LastWallSeconds);
        }

        model.Reset();
        return speeds;
    }

    /// <summary>How to start this same CLI again: the app host, or <c>dotnet moelab.dll</c> when run through dotnet.</summary>
    private static (string Program, string[] Prefix) SelfInvocation()
    {
        string exe = Environment.ProcessPath ?? throw new InvalidOperationException("cannot find this process's executable");
        string dll = typeof(BenchCommand).Assembly.Location;
        return Path.GetFileNameWithoutExtension(exe) == "dotnet" ? (exe, [dll]) : (exe, []);
    }

    private static void DropPageCache(string path)
    {
        using var file = ModelFile.Open(path, IoMode.Buffered);
        file.DropPageCache();
    }

    private static long ParseSize(string option, string text) =>
        ByteSize.TryParse(text, out long v) ? v : throw new CliUsageException($"--{option}: '{text}' is not a size (examples: 512MiB, 2GB)");

    /// <summary>Sample standard deviation; 0 for a single repetition (printed as "± 0.00", as llama-bench does).</summary>
    private static double Std(IReadOnlyList<double> xs) => xs.Count < 2 ? 0 : xs.StandardDeviation();

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private sealed record Options
    {
        public required string Model { get; init; }

        public int Tokens { get; init; }

        public int PromptTokens { get; init; }

        public int Reps { get; init; }

        public double WarmupSeconds { get; init; }

        public int Threads { get; init; }

        public required string Prompt { get; init; }

        public long? Budget { get; init; }

        public required string Io { get; init; }

        public required string Cache { get; init; }

        public required string Prefetch { get; init; }

        public required string IoScheduler { get; init; }

        public long ReadChunk { get; init; }

        public required string ReadEngine { get; init; }

        /// <summary>Where to write the timed runs' reads as a fio iolog for replay; null: no replay.</summary>
        public string? FioReplay { get; init; }
    }

    /// <summary>Per-token streaming figures over the measured repetitions (warm-up excluded).</summary>
    private sealed record StreamingFigures(
        int QueueDepth, double HitRate, double BytesReadPerToken, double BytesTransferredPerToken,
        double TokenMs, double StallMs, double IoBusyMs, double DeviceMBps, long SliceTransferBytes)
    {
        /// <summary>From the short pass after the timed runs (<see cref="SerialCompute"/>).</summary>
        public double HeadMs { get; init; }

        public double AttentionMs { get; init; }

        public double ProbeTokenMs { get; init; }

        public double ProbeIoBusyMs { get; init; }

        /// <summary>Mean cosine between consecutive layers' router inputs over the same pass (1: blocks change nothing).</summary>
        public double RouterInputCosine { get; init; }

        public string ReadEngine { get; init; } = "threads";

        /// <summary>Expert buffer bytes (the slab) and how many of them are in transparent huge pages after the runs (-1: unknown).</summary>
        public long SlabBytes { get; init; }

        public long SlabHugePageBytes { get; init; } = -1;

        /// <summary>The measured runs' counters (prefetch and demand-queue figures).</summary>
        public ExpertSourceCounters Counters { get; init; }
    }

    /// <summary>One timed repetition against fio's replay of its own reads: MB/s while the engine had reads in flight, fio's MB/s.</summary>
    /// <param name="Depth">The run's reads in flight over time, from its read log (taken before the replay reuses the log).</param>
    private readonly record struct ReplayPair(double EngineMBps, Fio.ReplayResult Fio, int Reads, long Bytes, ReadDepthProfile Depth)
    {
        public double Ratio => Fio.MegabytesPerSecond > 0 ? EngineMBps / Fio.MegabytesPerSecond : 0;

        /// <summary>fio's mean reads in flight by Little's law: rate × latency / read size (its iodepth is a ceiling, not what it kept).</summary>
        public double FioDepth => Fio.Reads > 0 ? Fio.MegabytesPerSecond * 1e6 * Fio.MeanLatencyMicroseconds * 1e-6 / ((double)Fio.Bytes / Fio.Reads) : 0;
    }

    private sealed record Measurement(string ExpertsLabel, List<double> Speeds, int TokensMeasured, StreamingFigures? Streaming)
    {
        public double Mean => Speeds.Count == 0 ? 0 : Speeds.Average();

        public double Std => BenchCommand.Std(Speeds);

        /// <summary>Prompt-processing tokens/s per repetition (empty with -p 0).</summary>
        public List<double> PromptSpeeds { get; init; } = [];

        public double PromptMean => PromptSpeeds.Count == 0 ? 0 : PromptSpeeds.Average();

        /// <summary>The file's synthesized layer update scale (<c>model synth --layer-update-scale</c>); null when it has none.</summary>
        public double? LayerUpdateScale { get; init; }

        /// <summary>Which matrices the engine repacked at load (llama.cpp repacks too, by default; say which ran).</summary>
        public string Layouts { get; init; } = "";

        /// <summary>The last timed run's device reads, with --fio-replay.</summary>
        public ExpertReadLog? ReadLog { get; init; }

        /// <summary>Each timed repetition set against fio replaying its reads right after it, with --fio-replay.</summary>
        public List<ReplayPair> Replays { get; init; } = [];

        /// <summary>With --resident-baseline: the last run's reads replayed alone and while the all-in-RAM engine decodes, alternated.</summary>
        public List<(Fio.ReplayResult Alone, Fio.ReplayResult UnderDecode)> UnderDecode { get; set; } = [];

        /// <summary>The last run's reads replayed at the engine's own mean depth (rounded), beside the depth-8 replays.</summary>
        public (int Depth, Fio.ReplayResult Fio)? DepthReplay { get; set; }

        public JsonObject ToJson()
        {
            var j = new JsonObject
            {
                ["experts"] = ExpertsLabel,
                ["tokens_per_s_mean"] = Mean,
                ["tokens_per_s_std"] = Std,
                ["tokens_per_s"] = new JsonArray([.. Speeds.Select(s => (JsonNode?)JsonValue.Create(s))]),
                ["tokens_measured"] = TokensMeasured,
                ["prompt_tokens_per_s_mean"] = PromptMean,
                ["prompt_tokens_per_s_std"] = BenchCommand.Std(PromptSpeeds),
                ["peak_rss_bytes"] = EngineCellRunner.PeakRss(),
            };
            if (LayerUpdateScale is { } scale) j["layer_update_scale"] = scale;
            if (Streaming is { } s)
            {
                j["queue_depth"] = s.QueueDepth;
                j["hit_rate"] = s.HitRate;
                j["bytes_read_per_token"] = s.BytesReadPerToken;
                j["bytes_transferred_per_token"] = s.BytesTransferredPerToken;
                j["token_ms"] = s.TokenMs;
                j["stall_ms"] = s.StallMs;
                j["io_busy_ms"] = s.IoBusyMs;
                j["device_mb_per_s_while_reading"] = s.DeviceMBps;
                j["read_bytes"] = s.SliceTransferBytes;
                j["read_engine"] = s.ReadEngine;
                j["head_ms"] = s.HeadMs;
                j["attention_ms"] = s.AttentionMs;
                j["router_input_cosine_consecutive"] = double.IsNaN(s.RouterInputCosine) ? null : s.RouterInputCosine; // NaN: one layer
                j["slab_huge_page_bytes"] = s.SlabHugePageBytes;
            }

            if (Replays.Count > 0)
            {
                j["fio_replay_per_run"] = new JsonArray([.. Replays.Select(p => (JsonNode?)new JsonObject
                {
                    ["reads"] = p.Reads,
                    ["bytes"] = p.Bytes,
                    ["engine_mb_per_s_while_reading"] = p.EngineMBps,
                    ["fio_mb_per_s"] = p.Fio.MegabytesPerSecond,
                    ["fio_mean_latency_us"] = p.Fio.MeanLatencyMicroseconds,
                    ["fio_huge_page_buffers"] = p.Fio.HugePageBuffers,
                    ["ratio"] = p.Ratio,
                    ["engine_mean_depth"] = p.Depth.MeanDepth,
                    ["engine_mean_latency_us"] = p.Depth.MeanLatencySeconds * 1e6,
                    ["engine_busy_below_depth_fraction"] = p.Depth.BelowFraction,
                    ["fio_mean_depth"] = p.FioDepth,
                })]);
                var all = Replays.Select(p => p.Depth).Aggregate((a, b) => a + b);
                j["read_depth"] = new JsonObject
                {
                    ["queue_depth"] = all.QueueDepth,
                    ["mean_depth"] = all.MeanDepth,
                    ["mean_latency_us"] = all.MeanLatencySeconds * 1e6,
                    ["busy_s"] = all.BusySeconds,
                    ["busy_below_depth_fraction"] = all.BelowFraction,
                    ["busy_s_at_depth"] = new JsonArray([.. all.SecondsAtDepth.Skip(1).Select(x => (JsonNode?)JsonValue.Create(x))]),
                    ["missing_depth_demand_waiting"] = all.MissingDepth(ReadDepthProfile.WaitingDemand),
                    ["missing_depth_prefetch_waiting"] = all.MissingDepth(ReadDepthProfile.WaitingPrefetch),
                    ["missing_depth_queue_empty"] = all.MissingDepth(ReadDepthProfile.Empty),
                    ["fio_mean_depth_median"] = Replays.Select(p => p.FioDepth).ToArray().Median(),
                    ["fio_mean_latency_us_median"] = Replays.Select(p => p.Fio.MeanLatencyMicroseconds).ToArray().Median(),
                };
                if (DepthReplay is { } dr)
                {
                    j["read_depth"]!["fio_at_engine_depth"] = new JsonObject
                    {
                        ["iodepth"] = dr.Depth,
                        ["mb_per_s"] = dr.Fio.MegabytesPerSecond,
                        ["mean_latency_us"] = dr.Fio.MeanLatencyMicroseconds,
                    };
                }
            }

            return j;
        }
    }
}
