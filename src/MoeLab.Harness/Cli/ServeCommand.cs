using System.Net;
using MoeLab.Harness.Coordinator;

namespace MoeLab.Harness.Cli;

/// <summary><c>moelab serve</c>: runs the coordinator that device agents dial into.</summary>
public sealed class ServeCommand : ICliCommand
{
    public string Name => "serve";

    public string Summary => "run the coordinator that device agents dial into";

    public string Usage =>
        "usage: moelab serve [--listen 127.0.0.1:7878] [--token-file ~/.moelab/coordinator/enrolment-token]\n" +
        "                    [--lease-timeout 30] [--heartbeat 5] [--max-attempts 3] [--allow-remote]\n" +
        "An agent that sends nothing for --lease-timeout seconds loses its cell, which is queued again for another agent\n" +
        "(up to --max-attempts leases per submission, then failed with the reason). `moelab run` of an experiment with\n" +
        "target agents and the same listen address and token file submits its cells here instead of starting its own.\n" +
        "Binds to loopback unless --allow-remote. The enrolment token is generated on first start, printed once, and\n" +
        "stored readable by the owner only; give its file to agents with --token-file.";

    public int Run(CliArgs args)
    {
        var listen = ParseEndPoint(args.Option("listen") ?? "127.0.0.1:7878");
        string tokenFile = args.Option("token-file") ?? EnrolmentToken.DefaultPath;
        double lease = args.Double("lease-timeout", 30);
        double heartbeat = args.Double("heartbeat", 5);
        int maxAttempts = args.Int("max-attempts", 3);
        bool allowRemote = args.Flag("allow-remote");
        args.EnsureAllUsed();
        if (lease <= 0 || heartbeat <= 0 || heartbeat >= lease) throw new CliUsageException("--heartbeat must be positive and shorter than --lease-timeout");
        if (maxAttempts < 1) throw new CliUsageException("--max-attempts must be at least 1");

        string token = EnrolmentToken.LoadOrCreate(tokenFile, out bool created);
        if (created) Console.WriteLine($"enrolment token (shown once; stored in {tokenFile}, mode 600): {token}");
        var queue = new CellQueue(TimeSpan.FromSeconds(lease), maxAttempts);
        var server = new CoordinatorServer(new CoordinatorOptions(listen, token, TimeSpan.FromSeconds(lease), TimeSpan.FromSeconds(heartbeat),
            TimeSpan.FromDays(7), maxAttempts, AllowRemote: allowRemote) { Log = Console.Out }, queue);
        server.StartAsync().GetAwaiter().GetResult();
        Console.WriteLine($"coordinator listening on {server.Address} (lease timeout {lease.ToString(System.Globalization.CultureInfo.InvariantCulture)} s; Ctrl+C to stop)");
        using var stop = new ManualResetEventSlim();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Set();
        };
        stop.Wait();
        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return 0;
    }

    internal static IPEndPoint ParseEndPoint(string text)
    {
        if (!IPEndPoint.TryParse(text, out var endPoint) || endPoint.Port == 0 && !text.EndsWith(":0", StringComparison.Ordinal))
            throw new CliUsageException($"--listen: '{text}' is not an address:port such as 127.0.0.1:7878");
        return endPoint;
    }
}
