using System.Diagnostics;
using System.Runtime.InteropServices;
using MoeLab.DeviceAgent;
using MoeLab.DeviceAgent.Telemetry;
using MoeLab.Harness.Experiments;

namespace MoeLab.Harness.Results;

/// <summary>Where and from what a result set came: enough to reproduce it or to doubt it.</summary>
public sealed record Manifest
{
    public required string Experiment { get; init; }

    public string? Description { get; init; }

    public required string ExperimentFile { get; init; }

    public required string ExperimentSha256 { get; init; }

    public required string Target { get; init; }

    public required string Model { get; init; }

    public long Seed { get; init; }

    public int Repetitions { get; init; }

    public int GenerateTokens { get; init; }

    public int WarmupTokens { get; init; }

    public required string GitCommit { get; init; }

    public bool? GitDirty { get; init; }

    public required string Machine { get; init; }

    public required string Os { get; init; }

    public required string Architecture { get; init; }

    public required string CpuModel { get; init; }

    public int Cores { get; init; }

    public long RamBytes { get; init; }

    /// <summary>The block device under the results directory (and what the kernel says of it), or "unavailable".</summary>
    public required string Disk { get; init; }

    public required string DotNetVersion { get; init; }

    public required string MoelabCommand { get; init; }

    public required DateTimeOffset Created { get; init; }

    /// <summary>Each time <c>--resume</c> continued this result set.</summary>
    public List<DateTimeOffset> Resumed { get; init; } = [];

    /// <summary>Telemetry sources that report nothing here, with the reason.</summary>
    public Dictionary<string, string> UnavailableTelemetry { get; init; } = [];

    public static Manifest Collect(Experiment experiment, string resultsDirectory)
    {
        var (commit, dirty) = Git(Path.GetDirectoryName(Path.GetFullPath(experiment.SourceFile))!);
        var description = DeviceInfo.Describe(Environment.MachineName, new ModelDirectory(resultsDirectory), null, new Dictionary<string, string>());
        using var sampler = new TelemetrySampler(TelemetrySampler.DefaultSources(), TimeSpan.FromSeconds(1));
        return new Manifest
        {
            Experiment = experiment.Name,
            Description = experiment.Description,
            ExperimentFile = Path.GetFullPath(experiment.SourceFile),
            ExperimentSha256 = experiment.SourceSha256,
            Target = experiment.Target,
            Model = experiment.Model.ToString(),
            Seed = experiment.Seed,
            Repetitions = experiment.Repetitions,
            GenerateTokens = experiment.Generate,
            WarmupTokens = experiment.Warmup,
            GitCommit = commit,
            GitDirty = dirty,
            Machine = Environment.MachineName,
            Os = RuntimeInformation.OSDescription,
            Architecture = RuntimeInformation.OSArchitecture.ToString(),
            CpuModel = description.CpuModel,
            Cores = description.Cores,
            RamBytes = description.RamBytes,
            Disk = DescribeDisk(resultsDirectory, description.DiskDevice),
            DotNetVersion = RuntimeInformation.FrameworkDescription,
            MoelabCommand = string.Join(' ', Environment.GetCommandLineArgs().Skip(1)),
            Created = DateTimeOffset.UtcNow,
            UnavailableTelemetry = new Dictionary<string, string>(sampler.UnavailableSources),
        };
    }

    private static string DescribeDisk(string directory, string? device)
    {
        if (device is null) return "unavailable";
        string name = Path.GetFileName(device);
        string rotational = ReadOrNull($"/sys/class/block/{name}/queue/rotational") ?? ReadOrNull($"/sys/class/block/{name}/../queue/rotational") ?? "?";
        string model = ReadOrNull($"/sys/class/block/{name}/device/model") ?? ReadOrNull($"/sys/class/block/{name}/../device/model") ?? "";
        long free = new DriveInfo(Path.GetFullPath(directory)).AvailableFreeSpace;
        return $"{device}{(model.Length > 0 ? " " + model : "")} ({(rotational == "0" ? "non-rotational" : rotational == "1" ? "rotational" : "rotational: unknown")}, {free / (1L << 30)} GiB free)";
    }

    private static string? ReadOrNull(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static (string Commit, bool? Dirty) Git(string directory)
    {
        string? Run(string args)
        {
            try
            {
                var psi = new ProcessStartInfo("git", args) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                using var p = Process.Start(psi)!;
                string output = p.StandardOutput.ReadToEnd().Trim();
                p.WaitForExit(5000);
                return p.ExitCode == 0 ? output : null;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return null;
            }
        }

        string? commit = Run("rev-parse HEAD");
        if (commit is null) return ("unavailable (not a git checkout or git missing)", null);
        string? status = Run("status --porcelain --untracked-files=no");
        return (commit, status is null ? null : status.Length > 0);
    }
}
