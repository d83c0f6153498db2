using System.Security.Cryptography;

namespace MoeLab.Harness.Coordinator;

/// <summary>
/// The secret an agent must present to register. Generated on the coordinator's first start, printed once, and
/// stored readable by the owner only; later starts reuse it silently.
/// </summary>
public static class EnrolmentToken
{
    public static string DefaultPath =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".moelab", "coordinator", "enrolment-token");

    /// <summary>Reads the token at <paramref name="path"/>, creating it if absent; <paramref name="created"/> says which.</summary>
    public static string LoadOrCreate(string path, out bool created)
    {
        if (File.Exists(path))
        {
            created = false;
            string existing = File.ReadAllText(path).Trim();
            if (existing.Length < 32) throw new InvalidDataException($"{path}: the enrolment token is shorter than 32 characters; delete the file to generate a new one");
            return existing;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        string token = NewSecret();
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(token);
        }

        created = true;
        return token;
    }

    public static string NewSecret() => Convert.ToHexString(RandomNumberGenerator.GetBytes(32)).ToLowerInvariant();

    /// <summary>Constant-time comparison, so response timing does not leak the token.</summary>
    public static bool Matches(string expected, string? presented) =>
        presented is not null && CryptographicOperations.FixedTimeEquals(
            System.Text.Encoding.UTF8.GetBytes(expected), System.Text.Encoding.UTF8.GetBytes(presented));
}
