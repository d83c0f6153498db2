using MoeLab.Engine.Gguf;

namespace MoeLab.Engine.Tests.Gguf;

public sealed class GgufRoundTripTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-gguf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static GgufWriter Sample()
    {
        var w = new GgufWriter();
        w.Set("general.architecture", "qwen3moe")
         .Set("general.alignment", 64u)
         .Set("qwen3moe.block_count", 2u)
         .Set("qwen3moe.rope.freq_base", 1e6f)
         .Set("flag", true)
         .Set("u64", GgufValue.Of(ulong.MaxValue))
         .Set("i8", new GgufValue(GgufValueType.Int8, (sbyte)-5))
         .Set("f64", new GgufValue(GgufValueType.Float64, Math.PI))
         .Set("tokens", GgufValue.Of(["a", "ü", "日本", ""]))
         .Set("scores", GgufValue.Of([1f, -2.5f]))
         .Set("types", GgufValue.Of([1, 2, 3]))
         .Set("bools", GgufValue.Of([true, false]));
        w.AddTensor("a", GgmlType.F32, [4, 3], Enumerable.Range(0, 48).Select(i => (byte)i).ToArray());
        w.AddTensor("b", GgmlType.Q8_0, [64, 2, 3], new byte[34 * 2 * 2 * 3].Select((_, i) => (byte)(i * 7)).ToArray());
        return w;
    }

    [Fact]
    public void Writer_then_reader_gives_back_every_value_and_tensor()
    {
        string path = Path.Combine(_dir, "m.gguf");
        Sample().Write(path);
        var f = GgufFile.Open(path);

        Assert.Equal(3u, f.Version);
        Assert.Equal(64, f.Alignment);
        Assert.Equal(0, f.DataOffset % 64);
        Assert.Equal("qwen3moe", f.Architecture);
        Assert.Equal(2, f.GetInt("qwen3moe.block_count"));
        Assert.Equal(1e6, f.GetDouble("qwen3moe.rope.freq_base"));
        Assert.True(f.GetBool("flag", false));
        Assert.Equal(ulong.MaxValue, (ulong)f.Get("u64").Value);
        Assert.Equal(-5, f.GetInt("i8"));
        Assert.Equal(Math.PI, f.GetDouble("f64"));
        Assert.Equal(["a", "ü", "日本", ""], f.GetArray<string>("tokens")!);
        Assert.Equal([1f, -2.5f], f.GetArray<float>("scores")!);
        Assert.Equal([1, 2, 3], f.GetArray<int>("types")!);
        Assert.Equal([true, false], f.GetArray<bool>("bools")!);

        var a = f.Tensor("a");
        Assert.Equal([4L, 3L], a.Dims);
        Assert.Equal(48, a.ByteSize);
        var b = f.Tensor("b");
        Assert.Equal(GgmlType.Q8_0, b.Type);
        Assert.Equal(0, b.RelativeOffset % 64);
        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(Enumerable.Range(0, 48).Select(i => (byte)i), bytes.Skip((int)a.AbsoluteOffset).Take(48));
        Assert.Equal((byte)(5 * 7), bytes[b.AbsoluteOffset + 5]);
        Assert.Equal(b.AbsoluteOffset + b.ByteSize, bytes.Length - ((64 - (b.ByteSize % 64)) % 64));
    }

    [Fact]
    public void Writer_refuses_a_tensor_callback_that_writes_the_wrong_size()
    {
        var w = new GgufWriter();
        w.AddTensor("x", GgmlType.F32, [4], new byte[12]);
        var e = Assert.Throws<InvalidOperationException>(() => w.Write(new MemoryStream()));
        Assert.Contains("'x'", e.Message);
    }

    public static TheoryData<string, Func<byte[], byte[]>, string> Corruptions() => new()
    {
        { "bad magic", b => Patch(b, 0, [(byte)'G', (byte)'G', (byte)'M', (byte)'L']), "not a GGUF file" },
        { "bad version", b => Patch(b, 4, BitConverter.GetBytes(7u)), "version 7" },
        { "absurd tensor count", b => Patch(b, 8, BitConverter.GetBytes(ulong.MaxValue / 2)), "tensor_count" },
        { "absurd kv count", b => Patch(b, 16, BitConverter.GetBytes(1UL << 40)), "metadata_kv_count" },
        { "truncated header", b => b[..40], "truncated" },
        { "huge key length", b => Patch(b, 24, BitConverter.GetBytes(1UL << 50)), "metadata[0].key" },
        { "unknown value type", b => Patch(b, 24 + 8 + "general.architecture".Length, BitConverter.GetBytes(99u)), "unknown value type 99" },
        { "tensor data beyond the end", b => b[..(b.Length - 100)], "beyond the end of the file" },
    };

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Corrupt_files_get_an_error_naming_the_field(string what, Func<byte[], byte[]> corrupt, string expected)
    {
        var ms = new MemoryStream();
        Sample().Write(ms);
        byte[] bad = corrupt(ms.ToArray());
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Read(new MemoryStream(bad), what));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Unknown_tensor_type_is_named()
    {
        var ms = new MemoryStream();
        var w = new GgufWriter();
        w.AddTensor("weird", GgmlType.F32, [4], new byte[16]);
        w.Write(ms);
        byte[] b = ms.ToArray();
        // Tensor info: name (8 + 5), n_dims (4), ne[0] (8), then the type.
        int typeAt = 24 + 8 + 5 + 4 + 8;
        Assert.Equal(0u, BitConverter.ToUInt32(b, typeAt));
        Patch(b, typeAt, BitConverter.GetBytes(77u));
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Read(new MemoryStream(b), "t"));
        Assert.Contains("'weird' has unknown ggml type 77", e.Message);
    }

    private static byte[] Patch(byte[] b, int at, byte[] with)
    {
        with.CopyTo(b, at);
        return b;
    }
}
