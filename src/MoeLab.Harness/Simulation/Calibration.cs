using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Io;
using MoeLab.Engine.Kernels;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// Measures this machine for a device profile (<c>moelab calibrate</c>): random O_DIRECT reads (F_NOCACHE on Apple)
/// through the engine's own <see cref="ModelFile"/> at several block sizes and queue depths (depth = that many threads
/// each with one read in flight, like fio's psync engine with numjobs), the engine's quantized expert matvec over a
/// working set far larger than the CPU caches, and the RAM the OS reports available.
/// </summary>
public static class Calibration
{
    public sealed record Options
    {
        public string Directory { get; init; } = Path.GetTempPath();

        public long FileBytes { get; init; } = 1L << 30;

        public int[] BlockKib { get; init; } = [4, 64, 256, 1024];

        public int[] QueueDepths { get; init; } = [1, 4, 16];

        public double SecondsPerPoint { get; init; } = 1.5;

        public GgmlType ExpertType { get; init; } = GgmlType.Q4_K;

        public int Threads { get; init; } = Environment.ProcessorCount;

        public Action<string>? Log { get; init; }
    }

    public static DeviceProfile Run(Options o)
    {
        var log = o.Log ?? (_ => { });
        var inv = CultureInfo.InvariantCulture;
        var profile = new DeviceProfile
        {
            Name = "host",
            Description = string.Create(inv, $"{Environment.MachineName}: {RuntimeInformation.OSDescription}, {Environment.ProcessorCount} logical CPUs, measured {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC"),
        };

        var (total, available, memSource) = Memory();
        profile.Memory.TotalGib = Math.Round(total / (double)(1L << 30), 2);
        profile.Memory.AvailableToModelGib = Math.Round(available / (double)(1L << 30), 2);
        profile.Sources.Add(new DeviceProfile.SourceNote { Figure = "memory.*", Source = memSource });

        string file = Path.Combine(o.Directory, $"moelab-calibrate-{Environment.ProcessId}.bin");
        try
        {
            log(string.Create(inv, $"writing a {o.FileBytes >> 20} MiB test file in {o.Directory}"));
            WriteTestFile(file, o.FileBytes);
            foreach (int depth in o.QueueDepths)
            {
                foreach (int kib in o.BlockKib)
                {
                    var (mbps, latUs) = MeasureReads(file, kib * 1024, depth, o.SecondsPerPoint);
                    log(string.Create(inv, $"  O_DIRECT random read {kib,5} KiB × depth {depth,2}: {mbps,8:F1} MB/s, {latUs,8:F1} µs"));
                    profile.Storage.Reads.Add(new DeviceProfile.ReadPoint { BlockKib = kib, QueueDepth = depth, ReadMbPerS = Math.Round(mbps, 1), LatencyUs = Math.Round(latUs, 1) });
                }
            }
        }
        finally
        {
            File.Delete(file);
        }

        profile.Storage.Device = o.Directory;
        profile.Storage.DefaultBlockKib = 1024;
        profile.Storage.DefaultQueueDepth = o.QueueDepths.Contains(4) ? 4 : o.QueueDepths[0];
        profile.Sources.Add(new DeviceProfile.SourceNote
        {
            Figure = "storage.reads",
            Source = string.Create(inv, $"moelab calibrate: random {(OperatingSystem.IsLinux() ? "O_DIRECT" : "F_NOCACHE")} reads of a {o.FileBytes >> 20} MiB file in {o.Directory} through ModelFile, {o.SecondsPerPoint} s per point; depth = threads with one read each in flight"),
        });

        double gbps = MeasureMatVec(o.ExpertType, o.Threads, o.SecondsPerPoint * 2, ExpertRows, ExpertCols);
        log(string.Create(inv, $"  {o.ExpertType} expert matvec (768×2048 experts, 256 MiB working set, {o.Threads} threads): {gbps:F2} GB/s of weights"));
        profile.Compute.ExpertGbPerS = Math.Round(gbps, 2);
        double dense = MeasureMatVec(o.ExpertType, o.Threads, o.SecondsPerPoint * 2, DenseRows, DenseCols);
        log(string.Create(inv, $"  {o.ExpertType} dense matvec ({DenseRows}×{DenseCols}, 256 MiB working set, {o.Threads} threads): {dense:F2} GB/s of weights"));
        profile.Compute.DenseGbPerS = Math.Round(dense, 2);
        profile.Sources.Add(new DeviceProfile.SourceNote
        {
            Figure = "compute.expert_gb_per_s",
            Source = string.Create(inv, $"moelab calibrate: the engine's {o.ExpertType} MatVec (ComputePool, {o.Threads} threads) over 768×2048 experts cycling through 256 MiB, weight bytes per second"),
        });
        profile.Sources.Add(new DeviceProfile.SourceNote
        {
            Figure = "compute.dense_gb_per_s",
            Source = string.Create(inv, $"moelab calibrate: the engine's {o.ExpertType} MatVec (ComputePool, {o.Threads} threads) over {DenseRows}×{DenseCols} matrices (an attention projection's shape) cycling through 256 MiB; attention over the KV cache, norms and sampling are not in it"),
        });
        return profile;
    }

    private static (long Total, long Available, string Source) Memory()
    {
        long total = 0, available = 0;
        if (File.Exists("/proc/meminfo"))
        {
            foreach (string line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal)) total = Kib(line);
                else if (line.StartsWith("MemAvailable:", StringComparison.Ordinal)) available = Kib(line);
            }
        }

        string source = "/proc/meminfo MemTotal and MemAvailable at calibration time";
        const string cgroup = "/sys/fs/cgroup/memory/memory.limit_in_bytes";
        if (File.Exists(cgroup) && long.TryParse(File.ReadAllText(cgroup).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long limit) && limit < total)
        {
            available = Math.Min(available, limit);
            source += ", capped by the cgroup v1 memory limit";
        }

        if (total == 0)
        {
            total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
            available = total / 2;
            source = "GC-reported memory (no /proc/meminfo); available = half of it, an estimate";
        }

        return (total, available, source);

        static long Kib(string line) => long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    private static void WriteTestFile(string path, long bytes)
    {
        var chunk = new byte[1 << 20];
        new Random(1).NextBytes(chunk);
        using (var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            for (long done = 0; done < bytes; done += chunk.Length) fs.Write(chunk, 0, (int)Math.Min(chunk.Length, bytes - done));
            fs.Flush(flushToDisk: true);
        }

        // Direct reads bypass the page cache anyway; drop it so buffered fallbacks do not read RAM either.
        using var f = ModelFile.Open(path, IoMode.Buffered);
        f.DropPageCache();
    }

    private static unsafe (double MbPerS, double LatencyUs) MeasureReads(string path, int block, int depth, double seconds)
    {
        using var file = ModelFile.Open(path, IoMode.Direct);
        long blocks = file.Length / block;
        long bytes = 0, reads = 0;
        double latencySum = 0;
        var stop = Stopwatch.StartNew();
        var threads = new Thread[depth];
        for (int t = 0; t < depth; t++)
        {
            int seed = t;
            threads[t] = new Thread(() =>
            {
                var buffer = (byte*)NativeMemory.AlignedAlloc((nuint)block, ModelFile.DirectAlignment);
                var rng = new Random(seed * 7919 + block);
                long myBytes = 0, myReads = 0;
                double myLatency = 0;
                try
                {
                    while (stop.Elapsed.TotalSeconds < seconds)
                    {
                        long offset = rng.NextInt64(blocks) * block;
                        long t0 = Stopwatch.GetTimestamp();
                        file.Read(offset, block, buffer, out long moved);
                        myLatency += Stopwatch.GetElapsedTime(t0).TotalSeconds;
                        myBytes += moved;
                        myReads++;
                    }
                }
                finally
                {
                    NativeMemory.AlignedFree(buffer);
                }

                Interlocked.Add(ref bytes, myBytes);
                Interlocked.Add(ref reads, myReads);
                lock (threads) latencySum += myLatency;
            });
            threads[t].Start();
        }

        foreach (var th in threads) th.Join();
        double elapsed = stop.Elapsed.TotalSeconds;
        return (bytes / elapsed / 1e6, reads == 0 ? 0 : latencySum / reads * 1e6);
    }

    // A Qwen3-30B-A3B expert's gate/up (768 × 2048) and an attention projection (4096 × 2048): the dense matvecs are
    // larger, so the per-call dispatch costs less per byte than for an expert's.
    private const int ExpertRows = 768, ExpertCols = 2048, DenseRows = 4096, DenseCols = 2048;

    private static unsafe double MeasureMatVec(GgmlType type, int threads, double seconds, int rows, int cols)
    {
        long one = GgmlTypeInfo.RowBytes(type, cols) * rows;
        int count = (int)Math.Max(1, (256L << 20) / one);
        var data = (byte*)NativeMemory.AlignedAlloc((nuint)(one * count), 64);
        try
        {
            // 64 distinct quantized rows repeated: real block contents without quantizing 256 MiB.
            var rng = new Random(3);
            long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
            var x = new float[cols];
            var template = new byte[rowBytes * 64];
            for (int r = 0; r < 64; r++)
            {
                for (int i = 0; i < cols; i++) x[i] = (float)((rng.NextDouble() - 0.5) * 0.1);
                Quantizer.QuantizeRow(type, x, template.AsSpan((int)(r * rowBytes), (int)rowBytes));
            }

            for (long r = 0; r < (long)rows * count; r += 64)
                template.AsSpan().CopyTo(new Span<byte>(data + (r * rowBytes), (int)(Math.Min(64, ((long)rows * count) - r) * rowBytes)));
            var experts = new WeightMatrix[count];
            for (int i = 0; i < count; i++) experts[i] = new WeightMatrix(type, rows, cols, data + (i * one));
            var v = new QuantizedVector(cols);
            for (int i = 0; i < cols; i++) x[i] = (float)((rng.NextDouble() - 0.5) * 2);
            v.Set(x);
            var y = new float[rows];
            using var pool = new ComputePool(threads);
            for (int i = 0; i < Math.Min(count, 32); i++) pool.MatVec(experts[i], v, y); // warm-up (JIT, threads)
            long done = 0;
            int next = 0;
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed.TotalSeconds < seconds)
            {
                pool.MatVec(experts[next], v, y);
                next = next + 1 == count ? 0 : next + 1;
                done++;
            }

            return done * one / sw.Elapsed.TotalSeconds / 1e9;
        }
        finally
        {
            NativeMemory.AlignedFree(data);
        }
    }
}
