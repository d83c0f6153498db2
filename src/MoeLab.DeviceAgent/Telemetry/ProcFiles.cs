using System.Globalization;

namespace MoeLab.DeviceAgent.Telemetry;

/// <summary>Reads "Key:  value unit" lines of Linux /proc files (status, meminfo, io) without regexes.</summary>
internal static class ProcFiles
{
    /// <summary>The numeric value of <paramref name="key"/> in a /proc key-value file, in the file's own unit; null if absent.</summary>
    public static long? ReadValue(string path, string key)
    {
        try
        {
            foreach (string line in File.ReadLines(path))
            {
                if (!line.StartsWith(key, StringComparison.Ordinal) || line.Length <= key.Length || line[key.Length] != ':') continue;
                ReadOnlySpan<char> rest = line.AsSpan(key.Length + 1).Trim();
                int space = rest.IndexOf(' ');
                if (space >= 0) rest = rest[..space];
                return long.TryParse(rest, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : null;
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return null;
    }

    /// <summary>
    /// Several values from one read of the file, so they describe one instant (VmRSS and VmHWM read separately can
    /// show a current RSS above the peak, because the kernel updates the high-water mark lazily).
    /// </summary>
    public static void ReadValues(string path, string[] keys, long?[] values)
    {
        Array.Clear(values);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return;
        }

        foreach (string line in text.Split('\n'))
        {
            for (int k = 0; k < keys.Length; k++)
            {
                string key = keys[k];
                if (!line.StartsWith(key, StringComparison.Ordinal) || line.Length <= key.Length || line[key.Length] != ':') continue;
                ReadOnlySpan<char> rest = line.AsSpan(key.Length + 1).Trim();
                int space = rest.IndexOf(' ');
                if (space >= 0) rest = rest[..space];
                values[k] = long.TryParse(rest, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : null;
            }
        }
    }

    public static bool Exists(string path) => File.Exists(path);
}
