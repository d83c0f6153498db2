using System.Globalization;
using System.Text.Json;

namespace MoeLab.Harness.Results;

/// <summary>
/// One result set on disk: <c>results/EXPERIMENT/TIMESTAMP/</c> with <c>manifest.json</c> and one
/// <c>cells/ID.json</c> per finished cell. Every file is written to a temporary name and renamed into place, so a
/// crash or kill leaves either the whole file or none of it; a finished cell is never written twice.
/// </summary>
public sealed class ResultStore
{
    // Finished cells already parsed (or written) by this store, by file path, with their summary rows: a cell file is
    // written once and never changed, so refreshing the result set after each cell parses only the new one.
    private readonly Dictionary<string, (CellRecord Record, CellSummary Summary)> _loaded = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    private ResultStore(string directory) => Directory = Path.GetFullPath(directory);

    public string Directory { get; }

    public string CellsDirectory => Path.Combine(Directory, "cells");

    public string TracesDirectory => Path.Combine(Directory, "traces");

    public string ManifestPath => Path.Combine(Directory, "manifest.json");

    /// <summary>A new result set under <paramref name="root"/>/<paramref name="experiment"/>/, named by UTC time.</summary>
    public static ResultStore Create(string root, string experiment, DateTimeOffset now)
    {
        string parent = Path.Combine(root, experiment);
        string stamp = now.UtcDateTime.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        string dir = Path.Combine(parent, stamp);
        for (int i = 2; System.IO.Directory.Exists(dir); i++) dir = Path.Combine(parent, $"{stamp}-{i}");
        System.IO.Directory.CreateDirectory(Path.Combine(dir, "cells"));
        return new ResultStore(dir);
    }

    /// <summary>The newest result set of <paramref name="experiment"/> that has a manifest, or null.</summary>
    public static ResultStore? Latest(string root, string experiment)
    {
        string parent = Path.Combine(root, experiment);
        if (!System.IO.Directory.Exists(parent)) return null;
        return System.IO.Directory.GetDirectories(parent)
            .Where(d => File.Exists(Path.Combine(d, "manifest.json")))
            .OrderByDescending(d => Path.GetFileName(d), StringComparer.Ordinal)
            .Select(d => new ResultStore(d))
            .FirstOrDefault();
    }

    public static ResultStore Open(string directory)
    {
        if (!File.Exists(Path.Combine(directory, "manifest.json")))
            throw new FileNotFoundException($"{directory}: not a result set (no manifest.json)");
        return new ResultStore(directory);
    }

    public Manifest ReadManifest() => Read(ManifestPath, ResultsJson.Default.Manifest);

    public void WriteManifest(Manifest manifest) => WriteJson(ManifestPath, manifest, ResultsJson.Default.Manifest);

    public string CellPath(string cellId) => Path.Combine(CellsDirectory, cellId + ".json");

    public string FailurePath(string cellId) => Path.Combine(CellsDirectory, cellId + ".failed.json");

    public bool IsComplete(string cellId) => File.Exists(CellPath(cellId));

    /// <summary>Writes a finished cell once; returns false (and writes nothing) when it is already there.</summary>
    public bool WriteCell(CellRecord record)
    {
        string path = CellPath(record.CellId);
        if (File.Exists(path)) return false;
        if (record.Result.TraceBase64 is { } trace)
            WriteAtomic(Path.Combine(TracesDirectory, record.CellId + ".moelab"), s => s.Write(Convert.FromBase64String(trace)));
        bool written = WriteAtomic(path, s => JsonSerializer.Serialize(s, record, ResultsJson.Default.CellRecord), overwrite: false);
        if (written)
        {
            File.Delete(FailurePath(record.CellId));
            lock (_gate) _loaded[path] = (record, CellSummary.Of(record));
        }

        return written;
    }

    public void WriteFailure(CellFailure failure) => WriteJson(FailurePath(failure.CellId), failure, ResultsJson.Default.CellFailure);

    public IReadOnlyList<CellFailure> LoadFailures() =>
        System.IO.Directory.Exists(CellsDirectory)
            ? System.IO.Directory.GetFiles(CellsDirectory, "*.failed.json").Order(StringComparer.Ordinal).Select(f => Read(f, ResultsJson.Default.CellFailure)).ToList()
            : [];

    /// <summary>Every finished cell, in the order they finished.</summary>
    public IReadOnlyList<CellRecord> LoadCells() => LoadFinished().Select(c => c.Record).ToList();

    /// <summary>Cell files this store has parsed from disk (its own writes are never parsed back).</summary>
    public int ParsedCellFiles { get; private set; }

    /// <summary>
    /// Every finished cell with its summary row, in the order they finished. The directory listing is the truth (a
    /// deleted cell file drops out); only files this store has not seen yet are parsed and summarized, so refreshing
    /// after each of N cells parses N files in all, not N²/2.
    /// </summary>
    internal IReadOnlyList<(CellRecord Record, CellSummary Summary)> LoadFinished()
    {
        if (!System.IO.Directory.Exists(CellsDirectory)) return [];
        var files = System.IO.Directory.GetFiles(CellsDirectory, "*.json").Where(f => !f.EndsWith(".failed.json", StringComparison.Ordinal));
        var cells = new List<(CellRecord Record, CellSummary Summary)>();
        lock (_gate)
        {
            foreach (string f in files)
            {
                if (!_loaded.TryGetValue(f, out var cell))
                {
                    var record = Read(f, ResultsJson.Default.CellRecord);
                    ParsedCellFiles++;
                    cell = (record, CellSummary.Of(record));
                    _loaded[f] = cell;
                }

                cells.Add(cell);
            }
        }

        return cells.OrderBy(c => c.Record.Finished).ToList();
    }

    public static void WriteJson<T>(string path, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info) =>
        WriteAtomic(path, s => JsonSerializer.Serialize(s, value, info));

    /// <summary>Write to a temporary file in the same directory, flush it to disk, then rename over the target.</summary>
    public static bool WriteAtomic(string path, Action<Stream> write, bool overwrite = true)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        System.IO.Directory.CreateDirectory(dir);
        string tmp = Path.Combine(dir, "." + Path.GetFileName(path) + "." + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + ".tmp");
        try
        {
            using (var s = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                write(s);
                s.Flush(flushToDisk: true);
            }

            if (!overwrite && File.Exists(path)) return false;
            File.Move(tmp, path, overwrite);
            return true;
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    private static T Read<T>(string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
    {
        using var s = File.OpenRead(path);
        try
        {
            return JsonSerializer.Deserialize(s, info) ?? throw new InvalidDataException($"{path}: the file holds null");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a valid {typeof(T).Name} ({e.Message})", e);
        }
    }
}
