namespace MoeLab.DeviceAgent.Emulation;

/// <summary>
/// A device to stand in for: the RAM an app on it can use and its storage read bandwidth. Figures match the
/// simulator's device profiles (experiments/devices/*.yaml, with their sources); the agent carries this small table
/// itself because it parses no YAML (AOT).
/// </summary>
public sealed record EmulationProfile(string Name, long MemoryBytes, long? ReadBytesPerSecond)
{
    public static IReadOnlyList<EmulationProfile> Known { get; } =
    [
        new("iphone-17-pro", 12L << 30, null),
        new("m3-max-48gb", 48L << 30, null),
    ];

    /// <summary>A known profile, optionally with its RAM scaled down (tests emulate a "phone" with a few hundred MiB).</summary>
    public static EmulationProfile Get(string name, long? memoryOverride = null, long? readOverride = null)
    {
        var p = Known.FirstOrDefault(k => k.Name == name)
            ?? (memoryOverride is not null ? new EmulationProfile(name, memoryOverride.Value, readOverride)
                : throw new ArgumentException($"unknown emulation profile '{name}'; known: {string.Join(", ", Known.Select(k => k.Name))} (or give --emulate-memory)"));
        return p with { MemoryBytes = memoryOverride ?? p.MemoryBytes, ReadBytesPerSecond = readOverride ?? p.ReadBytesPerSecond };
    }
}
