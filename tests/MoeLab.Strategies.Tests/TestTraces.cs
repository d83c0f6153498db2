using System.Globalization;
using MoeLab.Engine.Telemetry;

namespace MoeLab.Strategies.Tests;

/// <summary>The traces the strategy tests replay: checked-in synthetic data and the shared real Mixtral trace.</summary>
internal static class TestTraces
{
    public const string MixtralPath = "/work/shared/traces/mixtral-8x7b-h39s.lines";

    public static string DataPath(string name) => Path.Combine(AppContext.BaseDirectory, "Data", name);

    /// <summary>Reads the "lines" form: one line per (token, layer) step, token-major, comma-separated expert ids.</summary>
    public static RoutingTrace LoadLines(string path, int layers, int expertsPerLayer)
    {
        var b = new RoutingTraceBuilder(layers, expertsPerLayer, withWeights: false);
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0) continue;
            var ids = line.Split(',').Select(s => int.Parse(s, NumberStyles.Integer, CultureInfo.InvariantCulture)).ToArray();
            b.AddStep(ids);
        }

        return b.Build();
    }

    public static RoutingTrace Synthetic => _synthetic ??= LoadLines(DataPath("synthetic-8x32.lines"), 8, 32);

    /// <summary>The real trace, or null where the shared folder is absent (tests then skip its rows).</summary>
    public static RoutingTrace? Mixtral => File.Exists(MixtralPath) ? _mixtral ??= LoadLines(MixtralPath, 32, 8) : null;

    private static RoutingTrace? _synthetic;
    private static RoutingTrace? _mixtral;
}
