using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Tests.Model;

/// <summary>
/// Copies a GGUF with its tensor table changed, to make the variants other tools write (old per-expert tensors,
/// types MoeLab lacks, extra scale tensors) from a synthesized file. Metadata is copied verbatim, in order.
/// </summary>
internal static class GgufRewriter
{
    /// <summary>One tensor of the new file.</summary>
    public sealed record NewTensor(string Name, GgmlType Type, long[] Dims, byte[] Data);

    /// <summary>Writes <paramref name="destination"/>: for each tensor of the source, the tensors <paramref name="map"/> returns for it (its bytes given).</summary>
    public static void Rewrite(string source, string destination, Func<GgufTensorInfo, byte[], IEnumerable<NewTensor>> map, params (string Key, GgufValue Value)[] setKeys)
    {
        var f = GgufFile.Open(source);
        var w = new GgufWriter();
        foreach (var (key, value) in f.MetadataInOrder)
        {
            w.Set(key, value);
        }

        foreach (var (key, value) in setKeys)
        {
            w.Set(key, value);
        }

        using var stream = File.OpenRead(source);
        foreach (var t in f.Tensors)
        {
            var bytes = new byte[t.ByteSize];
            stream.Position = t.AbsoluteOffset;
            stream.ReadExactly(bytes);
            foreach (var n in map(t, bytes))
            {
                w.AddTensor(n.Name, n.Type, n.Dims, n.Data);
            }
        }

        w.Write(destination);
    }

    /// <summary>The tensor unchanged.</summary>
    public static NewTensor Same(GgufTensorInfo t, byte[] bytes) => new(t.Name, t.Type, t.Dims.ToArray(), bytes);
}
