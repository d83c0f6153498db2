namespace MoeLab.DeviceAgent;

/// <summary>
/// The only place on the device a cell may name models in. A cell names a file inside it; anything that resolves
/// outside (.., absolute paths, symlinks pointing out) is refused, so a coordinator cannot make the agent read
/// arbitrary files.
/// </summary>
public sealed class ModelDirectory
{
    public ModelDirectory(string root)
    {
        Root = Path.GetFullPath(root);
        if (!Directory.Exists(Root)) throw new DirectoryNotFoundException($"models directory '{Root}' does not exist");
    }

    public string Root { get; }

    /// <summary>The .gguf files present, as names relative to the root.</summary>
    public string[] List() =>
        Directory.EnumerateFiles(Root, "*.gguf", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(Root, f))
            .Order(StringComparer.Ordinal)
            .ToArray();

    /// <summary>The full path of <paramref name="name"/>, which must stay inside the directory.</summary>
    public string Resolve(string name)
    {
        if (string.IsNullOrWhiteSpace(name)) throw new ModelPathException(name, "the model name is empty");
        if (Path.IsPathRooted(name)) throw new ModelPathException(name, "model names are relative to the agent's models directory; absolute paths are refused");
        string full = Path.GetFullPath(Path.Combine(Root, name));
        if (!IsInside(full)) throw new ModelPathException(name, "the name resolves outside the models directory");
        if (!File.Exists(full)) throw new ModelPathException(name, $"no such model in {Root}");
        // A symlink inside the directory may still point out of it.
        var info = new FileInfo(full);
        if (info.LinkTarget is not null)
        {
            string? target = info.ResolveLinkTarget(returnFinalTarget: true)?.FullName;
            if (target is null || !IsInside(Path.GetFullPath(target))) throw new ModelPathException(name, "the file is a link to outside the models directory");
        }

        return full;
    }

    private bool IsInside(string full) =>
        full.StartsWith(Root.EndsWith(Path.DirectorySeparatorChar) ? Root : Root + Path.DirectorySeparatorChar, StringComparison.Ordinal);
}

/// <summary>A cell named a model the agent refuses to open.</summary>
public sealed class ModelPathException(string name, string reason) : Exception($"model '{name}': {reason}");
