using System.Diagnostics;
using System.Globalization;
using MoeLab.DeviceAgent;
using MoeLab.Harness.Simulation;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab calibrate</c>: measures this machine and writes experiments/devices/host.yaml for the simulator.</summary>
public sealed class CalibrateCommand : ICliCommand
{
    public string Name => "calibrate";

    public string Summary => "measure this disk (O_DIRECT reads by block size and depth), the matvec kernels and RAM; write a device profile";

    public string Usage =>
        "usage: moelab calibrate [--out experiments/devices/host.yaml] [--dir /tmp] [--size 1GiB] [--blocks 4,64,256,1024]\n" +
        "                        [--depths 1,4,16] [--seconds 1.5] [--threads N] [--fio]\n" +
        "--dir must be on the disk to measure (not tmpfs: O_DIRECT needs a real filesystem). --fio also runs fio randread\n" +
        "(libaio, direct=1) at 1024 KiB × the largest depth on the same kind of file and records it as a cross-check.";

    public int Run(CliArgs args)
    {
        string? outPath = args.Option("out");
        string dir = args.Option("dir") ?? Path.GetTempPath();
        long size = AgentMain.ByteCount(args.Option("size") ?? "1GiB", "size");
        int[] blocks = Ints(args.Option("blocks") ?? "4,64,256,1024", "blocks");
        int[] depths = Ints(args.Option("depths") ?? "1,4,16", "depths");
        double seconds = args.Double("seconds", 1.5);
        int threads = args.Int("threads", Environment.ProcessorCount);
        bool fio = args.Flag("fio");
        args.EnsureAllUsed();
        if (size < 64L << 20) throw new CliUsageException("--size: use at least 64MiB so random reads do not stay in the device's own cache");

        outPath ??= Path.Combine(DeviceProfile.DevicesDirectory() ?? Path.Combine("experiments", "devices"), "host.yaml");
        var profile = Calibration.Run(new Calibration.Options
        {
            Directory = dir, FileBytes = size, BlockKib = blocks, QueueDepths = depths, SecondsPerPoint = seconds, Threads = threads, Log = Console.WriteLine,
        });
        if (fio) CrossCheckWithFio(profile, dir, size, depths.Max());
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(outPath))!);
        File.WriteAllText(outPath, "# Written by `moelab calibrate`; rerun it to refresh. Figures are measurements of this machine.\n" + profile.ToYaml());
        Console.WriteLine($"wrote {outPath}");
        return 0;
    }

    private static void CrossCheckWithFio(DeviceProfile profile, string dir, long size, int depth)
    {
        string file = Path.Combine(dir, $"moelab-fio-{Environment.ProcessId}.bin");
        try
        {
            var psi = new ProcessStartInfo("fio")
            {
                ArgumentList =
                {
                    "--name=moelab", $"--filename={file}", "--rw=randread", "--bs=1024k", "--direct=1", "--ioengine=libaio",
                    $"--iodepth={depth}", string.Create(CultureInfo.InvariantCulture, $"--size={size}"), "--runtime=3", "--time_based",
                    "--output-format=terse", "--terse-version=3",
                },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            using var p = Process.Start(psi) ?? throw new IOException("could not start fio");
            string output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new IOException($"fio exited with {p.ExitCode}: {p.StandardError.ReadToEnd().Trim()}");
            // terse v3: field 7 = read bandwidth KiB/s, field 16 = read clat mean µs (1-based, ';'-separated).
            string[] f = output.Trim().Split('\n')[^1].Split(';');
            double kibps = double.Parse(f[6], CultureInfo.InvariantCulture);
            double clat = double.Parse(f[15], CultureInfo.InvariantCulture);
            string note = string.Create(CultureInfo.InvariantCulture, $"fio randread 1024 KiB libaio iodepth={depth} direct=1: {kibps * 1024 / 1e6:F1} MB/s, mean completion latency {clat:F1} µs");
            Console.WriteLine("  cross-check: " + note);
            profile.Sources.Add(new DeviceProfile.SourceNote { Figure = "storage.reads (cross-check, not used by the model)", Source = note });
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or FormatException or IndexOutOfRangeException)
        {
            Console.WriteLine($"  fio cross-check skipped: {e.Message}");
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static int[] Ints(string text, string what) =>
        text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) && v > 0 ? v : throw new CliUsageException($"--{what}: '{s}' is not a positive whole number"))
            .ToArray();
}
