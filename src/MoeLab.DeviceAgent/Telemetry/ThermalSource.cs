using System.Globalization;

namespace MoeLab.DeviceAgent.Telemetry;

/// <summary>
/// Temperature: the hottest Linux thermal zone or hwmon sensor, in °C; on Apple platforms the process thermal state
/// (0 nominal, 1 fair, 2 serious, 3 critical) from NSProcessInfo, since iOS exposes no temperatures.
/// </summary>
public sealed class ThermalSource : ITelemetrySource
{
    private readonly string[] _sensorFiles;

    public ThermalSource()
        : this("/sys/class/thermal", "/sys/class/hwmon")
    {
    }

    /// <summary>Reads sensors under the given roots (tests point these at a fake tree).</summary>
    public ThermalSource(string thermalRoot, string hwmonRoot) => _sensorFiles = FindSensors(thermalRoot, hwmonRoot);

    public string Name => "thermal";

    public IReadOnlyList<string> Metrics { get; } = ["temperature_c", "thermal_state"];

    public int SensorCount => _sensorFiles.Length;

    public string? Unavailable =>
        AppleSystem.IsApple ? null
        : _sensorFiles.Length == 0 ? "no thermal zone or hwmon temperature sensor is exposed by this OS (typical of VMs)"
        : null;

    public void Sample(Span<double> values, double elapsedSeconds)
    {
        values.Fill(double.NaN);
        if (AppleSystem.IsApple)
        {
            values[1] = AppleSystem.ThermalState();
            return;
        }

        double hottest = double.NaN;
        foreach (string file in _sensorFiles)
        {
            try
            {
                // Both interfaces report millidegrees Celsius.
                if (long.TryParse(File.ReadAllText(file).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long milli))
                {
                    double c = milli / 1000.0;
                    if (double.IsNaN(hottest) || c > hottest) hottest = c;
                }
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        values[0] = hottest;
    }

    private static string[] FindSensors(string thermalRoot, string hwmonRoot)
    {
        var files = new List<string>();
        try
        {
            if (Directory.Exists(thermalRoot))
            {
                foreach (string zone in Directory.EnumerateDirectories(thermalRoot, "thermal_zone*"))
                {
                    string f = Path.Combine(zone, "temp");
                    if (File.Exists(f)) files.Add(f);
                }
            }

            if (Directory.Exists(hwmonRoot))
            {
                foreach (string hw in Directory.EnumerateDirectories(hwmonRoot))
                    files.AddRange(Directory.EnumerateFiles(hw, "temp*_input"));
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        files.Sort(StringComparer.Ordinal);
        return files.ToArray();
    }
}
