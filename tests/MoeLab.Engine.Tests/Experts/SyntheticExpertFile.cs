using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;

namespace MoeLab.Engine.Tests.Experts;

/// <summary>
/// A file of random expert bytes placed by hand at unaligned offsets (as GGUF places expert slices), with the
/// layout pointing at them and the bytes kept for comparison. Lives in the temp directory (a real disk here, so
/// O_DIRECT works); deleted on dispose.
/// </summary>
internal sealed class SyntheticExpertFile : IDisposable
{
    public SyntheticExpertFile(int layers, int experts, int seed, int hidden = 256, int ff = 64, GgmlType type = GgmlType.Q8_0, string? directory = null)
    {
        var rng = new Random(seed);
        Path = System.IO.Path.Combine(directory ?? System.IO.Path.GetTempPath(), $"moelab-experts-{Environment.ProcessId}-{Guid.NewGuid():N}.bin");
        int n = layers * experts;
        var slices = new ExpertSlices[n];
        Bytes = new byte[n][][];
        long gateBytes = GgmlTypeInfo.RowBytes(type, hidden) * ff; // ff rows of hidden weights
        long downBytes = GgmlTypeInfo.RowBytes(type, ff) * hidden;  // hidden rows of ff weights

        // Slices in shuffled order with odd gaps, so no slice starts on a page boundary by design.
        var order = Enumerable.Range(0, n * 3).OrderBy(_ => rng.Next()).ToArray();
        var offsets = new long[n * 3];
        long at = 1 + rng.Next(4096);
        foreach (int id in order)
        {
            offsets[id] = at;
            at += (id % 3 == 2 ? downBytes : gateBytes) + 1 + rng.Next(3000);
        }

        using (var fs = new FileStream(Path, FileMode.CreateNew, FileAccess.Write))
        {
            fs.SetLength(at + rng.Next(5000));
            for (int i = 0; i < n; i++)
            {
                Bytes[i] = new byte[3][];
                for (int j = 0; j < 3; j++)
                {
                    Bytes[i][j] = new byte[j == 2 ? downBytes : gateBytes];
                    rng.NextBytes(Bytes[i][j]);
                    fs.Position = offsets[(i * 3) + j];
                    fs.Write(Bytes[i][j]);
                }

                slices[i] = new ExpertSlices(
                    new ExpertTensorSlice(offsets[i * 3], gateBytes, type, ff, hidden),
                    new ExpertTensorSlice(offsets[(i * 3) + 1], gateBytes, type, ff, hidden),
                    new ExpertTensorSlice(offsets[(i * 3) + 2], downBytes, type, hidden, ff));
            }

            fs.Flush(flushToDisk: true); // dirty pages cannot be dropped from the page cache
        }

        Layout = new ExpertLayout(Path, Enumerable.Range(0, layers).ToArray(), experts, slices);
    }

    public string Path { get; }

    public ExpertLayout Layout { get; }

    /// <summary>[layer * experts + expert][gate, up, down].</summary>
    public byte[][][] Bytes { get; }

    public long ExpertBytes => Layout[0, 0].Bytes;

    public unsafe void AssertMatches(int layer, int expert, in ExpertWeights w)
    {
        var want = Bytes[(layer * Layout.ExpertsPerLayer) + expert];
        Assert.True(want[0].AsSpan().SequenceEqual(FileBytes(w.Gate)), $"gate of L{layer}/E{expert} differs");
        Assert.True(want[1].AsSpan().SequenceEqual(FileBytes(w.Up)), $"up of L{layer}/E{expert} differs");
        Assert.True(want[2].AsSpan().SequenceEqual(FileBytes(w.Down)), $"down of L{layer}/E{expert} differs");
    }

    /// <summary>A matrix's bytes in the file's row layout (a streamed expert may have been repacked on arrival).</summary>
    public static unsafe byte[] FileBytes(in WeightMatrix m)
    {
        if (m.Layout == WeightLayout.Rows) return m.All.ToArray();
        var rows = new byte[m.TotalBytes];
        long groupBytes = (long)RowInterleave.GroupRows * m.RowBytes;
        fixed (byte* r = rows)
        {
            for (long g = 0; g < m.Rows / RowInterleave.GroupRows; g++)
            {
                RowInterleave.DeinterleaveGroup(m.Type, m.Data + (g * groupBytes), m.RowBytes, m.Cols, r + (g * groupBytes));
            }
        }

        return rows;
    }

    public void Dispose() => File.Delete(Path);
}
