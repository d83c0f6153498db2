using System.Globalization;
using MoeLab.DeviceAgent.Emulation;

namespace MoeLab.DeviceAgent;

/// <summary>
/// Entry point shared by the standalone agent binary and <c>moelab agent</c>:
/// <c>--coordinator http://HOST:PORT --token-file F --models DIR [--emulate PROFILE] [--emulate-memory BYTES]
/// [--emulate-read-bps BYTES] [--name N] [--telemetry-hz 4] [--max-cells N] [--idle-exit SECONDS]</c>.
/// </summary>
public static class AgentMain
{
    public const string Usage =
        "usage: moelab agent --coordinator http://HOST:PORT --token-file F --models DIR [--emulate iphone-17-pro|m3-max-48gb]\n" +
        "                    [--emulate-memory 512MiB] [--emulate-read-bps 2GB] [--name NAME] [--telemetry-hz 4]\n" +
        "                    [--max-cells N] [--idle-exit SECONDS]";

    /// <summary>The engine-backed runner; the standalone binary and the harness both set it (see EngineCellRunner).</summary>
    public static Func<ICellRunner>? RunnerFactory { get; set; }

    public static int Run(string[] args)
    {
        Dictionary<string, string> o;
        try
        {
            o = Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine("moelab agent: " + e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }

        try
        {
            var coordinator = new Uri(Need(o, "coordinator"));
            string token = File.ReadAllText(Need(o, "token-file")).Trim();
            var models = new ModelDirectory(Need(o, "models"));
            Api.EmulationReport? emulation = null;
            if (o.TryGetValue("emulate", out string? profileName))
            {
                var profile = EmulationProfile.Get(profileName,
                    o.TryGetValue("emulate-memory", out string? mem) ? ByteCount(mem, "emulate-memory") : null,
                    o.TryGetValue("emulate-read-bps", out string? bps) ? ByteCount(bps, "emulate-read-bps") : null);
                emulation = MemoryCgroup.Apply(profile, models.Root);
                Console.Error.WriteLine($"emulating {profile.Name}: memory limit {profile.MemoryBytes} bytes {(emulation.MemoryLimitApplied ? "applied" : "NOT applied")}" +
                                        (emulation.Notes.Length > 0 ? " (" + emulation.Notes + ")" : ""));
            }

            double hz = o.TryGetValue("telemetry-hz", out string? h) ? double.Parse(h, CultureInfo.InvariantCulture) : 4;
            var options = new AgentOptions(
                coordinator, token, models,
                o.GetValueOrDefault("name") ?? Environment.MachineName,
                TimeSpan.FromSeconds(1 / Math.Clamp(hz, 0.1, 100)),
                TimeSpan.FromSeconds(20),
                emulation,
                o.TryGetValue("max-cells", out string? mc) ? int.Parse(mc, CultureInfo.InvariantCulture) : int.MaxValue,
                o.TryGetValue("idle-exit", out string? ie) ? TimeSpan.FromSeconds(double.Parse(ie, CultureInfo.InvariantCulture)) : null);
            var runner = (RunnerFactory ?? (() => new Runs.EngineCellRunner()))();
            using var cancel = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                cancel.Cancel();
            };
            try
            {
                return new Agent(options, runner, Console.Error).Run(cancel.Token);
            }
            finally
            {
                if (emulation is not null) MemoryCgroup.Leave();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or FormatException
                                      or InvalidDataException or InvalidOperationException or Api.CoordinatorAuthException or UriFormatException)
        {
            Console.Error.WriteLine("moelab agent: " + e.Message);
            return 1;
        }
    }

    internal static Dictionary<string, string> Parse(string[] args)
    {
        var o = new Dictionary<string, string>(StringComparer.Ordinal);
        string[] known = ["coordinator", "token-file", "models", "emulate", "emulate-memory", "emulate-read-bps", "name", "telemetry-hz", "max-cells", "idle-exit"];
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected argument '{args[i]}'");
            string name = args[i][2..];
            string? value = null;
            int eq = name.IndexOf('=');
            if (eq >= 0) (name, value) = (name[..eq], name[(eq + 1)..]);
            if (!known.Contains(name)) throw new ArgumentException($"unknown option --{name}");
            value ??= i + 1 < args.Length ? args[++i] : throw new ArgumentException($"--{name} needs a value");
            o[name] = value;
        }

        return o;
    }

    private static string Need(Dictionary<string, string> o, string name) =>
        o.TryGetValue(name, out string? v) ? v : throw new ArgumentException($"--{name} is required");

    /// <summary>"512MiB", "2GiB", "1.5GB", "4096".</summary>
    public static long ByteCount(string text, string what)
    {
        string t = text.Trim();
        (string suffix, double factor)[] units = [("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1L << 40), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12), ("B", 1)];
        foreach (var (suffix, factor) in units)
        {
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase) &&
                double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0)
                return (long)(v * factor);
        }

        if (long.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out long b) && b >= 0) return b;
        throw new ArgumentException($"--{what}: '{text}' is not a byte size (e.g. 512MiB, 2GiB, 1.5GB)");
    }
}
