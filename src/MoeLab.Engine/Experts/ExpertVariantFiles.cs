using System.Globalization;
using Microsoft.Win32.SafeHandles;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;

namespace MoeLab.Engine.Experts;

/// <summary>
/// Where the lower-precision copies of a model's routed experts live: one GGUF side file per precision next to the
/// model, <c>&lt;stem&gt;.experts-&lt;type&gt;.gguf</c> (e.g. <c>qwen3-30b.experts-q4_0.gguf</c>), holding only the stacked
/// expert tensors under the model's own names in that type, and naming the model it was made from (file name and a
/// fingerprint of its routers and first expert bytes), so a copy of another or a rebuilt model is refused rather
/// than silently mixed in. <c>moelab model requant</c> writes them (<see cref="ExpertRequantizer"/>); the precision
/// policies see them as variants 1.. after the model's own experts (variant 0).
/// </summary>
public static class ExpertVariantFiles
{
    public const string SourceKey = "moelab.experts.source";
    public const string FingerprintKey = "moelab.experts.source_fingerprint";
    public const string TypeKey = "moelab.experts.type";

    private const string Infix = ".experts-";

    /// <summary>The side file of <paramref name="modelPath"/> holding its experts as <paramref name="type"/>.</summary>
    public static string PathFor(string modelPath, GgmlType type) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, Stem(modelPath) + Infix + type.ToString().ToLowerInvariant() + ".gguf");

    /// <summary>The side files present next to <paramref name="modelPath"/>, in a stable order (by name).</summary>
    public static IReadOnlyList<string> Find(string modelPath)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        if (!Directory.Exists(dir)) return [];
        return [.. Directory.EnumerateFiles(dir, Stem(modelPath) + Infix + "*.gguf").Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// The model's own expert layout followed by one per side file found: what an <see cref="ExpertStore"/> takes for a
    /// precision policy. Every side file is checked against the model (source, fingerprint, tensor shapes).
    /// </summary>
    public static IReadOnlyList<ExpertLayout> Layouts(GgufFile model, ModelConfig config, ExpertLayout native)
    {
        var layouts = new List<ExpertLayout> { native };
        foreach (string side in Find(model.Path))
        {
            layouts.Add(Open(side, model, config, native));
        }

        return layouts;
    }

    /// <summary>Opens one side file and checks it belongs to <paramref name="model"/>; the error names the file and the fix.</summary>
    public static ExpertLayout Open(string sidePath, GgufFile model, ModelConfig config, ExpertLayout native)
    {
        GgufFile side;
        try
        {
            side = GgufFile.Open(sidePath);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException or OverflowException)
        {
            throw new InvalidDataException($"{sidePath}: expert variant file is unreadable ({e.Message}); delete it and run `moelab model requant --model {model.Path}` again", e);
        }

        string? source = side.GetStringOrNull(SourceKey);
        string? fingerprint = side.GetStringOrNull(FingerprintKey);
        if (source is null || fingerprint is null)
        {
            throw new InvalidDataException($"{sidePath}: not a moelab expert variant file (metadata '{SourceKey}'/'{FingerprintKey}' missing)");
        }

        string expected = Fingerprint(model);
        if (fingerprint != expected)
        {
            throw new InvalidDataException(
                $"{sidePath}: expert variant file was made from '{source}' (fingerprint {fingerprint}), not from {Path.GetFileName(model.Path)} (fingerprint {expected}); " +
                $"the model changed since: run `moelab model requant --model {model.Path} --type {side.GetStringOrNull(TypeKey) ?? "<type>"}` again");
        }

        ExpertLayout layout;
        try
        {
            layout = ExpertTensors.Layout(side, config);
        }
        catch (GgufFormatException e)
        {
            throw new InvalidDataException($"{sidePath}: expert variant file does not match {Path.GetFileName(model.Path)}: {e.Message}", e);
        }

        if (!layout.MoeLayers.SequenceEqual(native.MoeLayers))
        {
            throw new InvalidDataException($"{sidePath}: holds experts for layers [{string.Join(", ", layout.MoeLayers)}], the model has them in [{string.Join(", ", native.MoeLayers)}]");
        }

        return layout;
    }

    /// <summary>
    /// FNV-1a 64 over the routed-expert tensor table and, per MoE layer, the first 4 KiB of the router and of the
    /// gate experts: another model, another seed or a re-quantized source all change it; reading it costs a few reads.
    /// </summary>
    public static string Fingerprint(GgufFile model)
    {
        ulong h = 14695981039346656037UL;
        void Mix(ReadOnlySpan<byte> bytes)
        {
            foreach (byte b in bytes)
            {
                h = (h ^ b) * 1099511628211UL;
            }
        }

        using SafeFileHandle handle = File.OpenHandle(model.Path);
        Span<byte> buffer = stackalloc byte[4096];
        foreach (var t in model.Tensors)
        {
            bool router = t.Name.EndsWith(".ffn_gate_inp.weight", StringComparison.Ordinal);
            if (!router && !ExpertTensors.IsRoutedExpert(t)) continue;
            Mix(System.Text.Encoding.UTF8.GetBytes(t.Name + ":" + t.Type + ":" + t.ShapeText));
            if (router || t.Name.EndsWith(".ffn_gate_exps.weight", StringComparison.Ordinal))
            {
                int n = RandomAccess.Read(handle, buffer[..(int)Math.Min(buffer.Length, t.ByteSize)], t.AbsoluteOffset);
                Mix(buffer[..n]);
            }
        }

        return h.ToString("x16", CultureInfo.InvariantCulture);
    }

    private static string Stem(string modelPath) => Path.GetFileNameWithoutExtension(modelPath);
}
