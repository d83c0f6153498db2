using System.Globalization;
using System.Text;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Io;
using static MoeLab.Benchmarks.BenchArgs;

namespace MoeLab.Benchmarks;

/// <summary>
/// <c>dotnet run -c Release --project bench/MoeLab.Benchmarks -- read-footprint [--layers 8] [--rounds 2] [--seconds 3]
/// [--buffers 1,8,32,72,256] [--depths 1,8] [--dir /tmp]</c>: the same random direct slice reads at a fixed depth into
/// rotating sets of buffers of growing total size, beside fio at the same block size and depth, interleaved in rounds.
/// fio reuses its depth's few buffers; the engine reads each expert into its own slot of a slab of the budget's size.
/// Where a read is served by a copy into guest memory (a virtual disk), the destination's footprint alone can change
/// the rate, which "engine / fio at the same block size and depth" then counts against the engine.
/// </summary>
public static class ReadFootprint
{
    public static void Run(string[] args)
    {
        int layers = Int(args, "--layers", 8), rounds = Int(args, "--rounds", 2), seconds = Int(args, "--seconds", 3);
        int[] counts = Ints(args, "--buffers", "1,8,32,72,256"), depths = Ints(args, "--depths", "1,8");
        string dir = Opt(args, "--dir") ?? Path.GetTempPath();
        string path = Path.Combine(dir, $"moelab-read-footprint-{Environment.ProcessId}.bin");
        var layout = StreamingFile.Qwen3_30B_A3B(path, layers);
        Console.WriteLine(Inv($"writing {layout.TotalBytes / 1e9:F2} GB of experts to {path}"));
        StreamingFile.Write(layout);
        try
        {
            using var store = new ExpertStore(layout, IoMode.Direct);
            long block = store.ReadBytes(0, 0, 0, 0);
            foreach (int depth in depths)
            {
                RandomSliceLoad.Run(store, depth, TimeSpan.FromSeconds(1)); // warm-up (fio: --ramp_time)
                for (int r = 0; r < rounds; r++)
                {
                    // fio before and after the store's runs, against their mean: the disk's rate drifts within seconds here.
                    double before = MoeLab.Harness.Peers.Fio.RandomRead(path, block, depth, seconds).MegabytesPerSecond;
                    var rates = new List<(int Buffers, double Rate)>();
                    foreach (int n in counts)
                    {
                        int buffers = Math.Max(n, depth);
                        var s = RandomSliceLoad.Run(store, depth, TimeSpan.FromSeconds(seconds), seed: r, buffers: buffers);
                        rates.Add((buffers, s.Transferred / s.Seconds / 1e6));
                    }

                    double after = MoeLab.Harness.Peers.Fio.RandomRead(path, block, depth, seconds).MegabytesPerSecond, fio = (before + after) / 2;
                    var line = new StringBuilder(Inv($"depth {depth} round {r}: fio {before:F0} / {after:F0} MB/s; store into"));
                    foreach (var (buffers, rate) in rates) line.Append(Inv($" {buffers} buffers ({buffers * store.BufferBytes / 1048576} MiB) {rate:F0} ({rate / fio:F2})"));
                    Console.WriteLine(line.Append(Inv($"; load {File.ReadAllText("/proc/loadavg").Split(' ')[0]}")));
                }
            }

            Console.WriteLine(Inv($"MB/s of device bytes; (x) = against the mean of fio's randread of {block} B at the same depth before and after the round's store runs; buffers are huge pages, touched before timing, read into least recently used first"));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
