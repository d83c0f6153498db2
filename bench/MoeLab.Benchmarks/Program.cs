namespace MoeLab.Benchmarks;

public static class Program
{
    public static void Main(string[] args)
    {
        // Not a BenchmarkDotNet job: a fixed-duration throughput sweep that also runs fio on the same file.
        if (args is ["streaming-vs-fio", ..])
        {
            StreamingVsFio.Run(args[1..]);
            return;
        }

        if (args is ["read-footprint", ..])
        {
            ReadFootprint.Run(args[1..]);
            return;
        }

        if (args is ["streaming-overlap", ..])
        {
            StreamingOverlap.Run(args[1..]);
            return;
        }

        if (args is ["stream-ab", ..])
        {
            StreamAb.Run(args[1..]);
            return;
        }

        if (args is ["decode-ab", ..])
        {
            DecodeAb.Run(args[1..]);
            return;
        }

        BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
