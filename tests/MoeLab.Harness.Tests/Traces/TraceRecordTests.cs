using System.Buffers.Binary;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Engine.Telemetry;
using MoeLab.Harness.Traces;

namespace MoeLab.Harness.Tests.Traces;

/// <summary><c>moelab trace record</c> on a tiny synthesized model, then every export format read back.</summary>
[Collection(nameof(ConsoleCollection))]
public sealed class TraceRecordTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moelab-record-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Model()
    {
        string path = Path.Combine(_dir, "tiny.gguf");
        ModelSynthesizer.Write(new SynthOptions(ModelPreset.Find("tiny-qwen3moe")!, Quant: GgmlType.Q4_0), path);
        return path;
    }

    private static void Cli(params string[] args)
    {
        var (code, _, error) = ConsoleCapture.Run(args);
        Assert.True(code == 0, $"moelab {string.Join(' ', args)} exited {code}: {error}");
    }

    [Fact]
    public void RecordThenEveryExportImportsBackIdentical()
    {
        string model = Model();
        string prompts = Path.Combine(_dir, "prompts.txt");
        File.WriteAllLines(prompts, ["The expert cache", "Once upon a time"]);
        string trace = Path.Combine(_dir, "run.mltrace");
        // Streaming under a budget with direct reads, so the recorded run is the offloading path, not the resident one.
        Cli("trace", "record", "--model", model, "--prompts", prompts, "-n", "5", "--budget", "192KiB", "--io", "direct", "--next-gate", "--out", trace);

        var recorded = MoelabTraceFormat.Read(trace);
        var prompt0 = Assert.Single(recorded.Header, h => h.Key == "prompts").Value.Split(';');
        Assert.Equal(2, prompt0.Length);
        int tokens = prompt0.Sum(p => int.Parse(p.Split(':')[1]) + int.Parse(p.Split(':')[2]));
        Assert.Equal(tokens, recorded.Tokens);
        Assert.Equal(2, recorded.Layers);
        Assert.Equal(8, recorded.ExpertsPerLayer);
        Assert.True(recorded.HasWeights);
        for (int t = 0; t < recorded.Tokens; t++)
        {
            for (int l = 0; l < recorded.Layers; l++)
            {
                var ids = recorded.Experts(t, l);
                Assert.Equal(2, ids.Length);
                Assert.NotEqual(ids[0], ids[1]);
                var w = recorded.Weights(t, l);
                Assert.True(w[0] >= w[1] && w[1] > 0, $"token {t} layer {l}: weights {w[0]}, {w[1]} not best first"); // qwen3moe renormalizes top-k
                Assert.Equal(1f, w[0] + w[1], 5);
            }
        }

        // The CSV form written alongside is the same trace.
        TraceAssert.Identical(recorded, TraceCsvFormat.Read(Path.ChangeExtension(trace, ".csv")));

        // Next-gate guesses: same shape, layer 0 empty, layer 1 holds k guesses.
        var guesses = MoelabTraceFormat.Read(Path.Combine(_dir, "run.nextgate.mltrace"));
        Assert.Equal(recorded.Tokens, guesses.Tokens);
        Assert.Equal(0, guesses.Experts(0, 0).Length);
        Assert.Equal(2, guesses.Experts(recorded.Tokens - 1, 1).Length);
        TraceAssert.Identical(guesses, TraceCsvFormat.Read(Path.Combine(_dir, "run.nextgate.csv")));

        foreach (string to in new[] { "moelab", "csv", "jsonl", "lines", "oracle-general", "oracle-general-csv" })
        {
            string output = Path.Combine(_dir, "export." + to);
            Cli("trace", "export", trace, "--to", to, "--out", output);
            string imported = Path.Combine(_dir, "import-" + to + ".mltrace");
            Cli("trace", "import", output, "--format", to, "--layers", "2", "--experts", "8", "--out", imported);
            var back = MoelabTraceFormat.Read(imported);
            if (to is "moelab" or "csv")
            {
                TraceAssert.Identical(recorded, back);
            }
            else if (to == "jsonl")
            {
                TraceAssert.Identical(recorded, back, compareHeader: false);
            }
            else
            {
                // lines and oracleGeneral keep the expert sequence only, not the router weights.
                Assert.False(back.HasWeights);
                Assert.Equal(recorded.StepStarts.ToArray(), back.StepStarts.ToArray());
                Assert.Equal(recorded.AllExperts.ToArray(), back.AllExperts.ToArray());
            }
        }

        // oracleGeneral, byte by byte against the documented layout, computed here independently of the exporter.
        byte[] bin = File.ReadAllBytes(Path.Combine(_dir, "export.oracle-general"));
        var keys = recorded.RequestSequence();
        Assert.Equal(keys.Length * 24, bin.Length);
        int at = 0;
        for (int t = 0; t < recorded.Tokens; t++)
        {
            for (int l = 0; l < recorded.Layers; l++)
            {
                foreach (int e in recorded.Experts(t, l))
                {
                    var r = bin.AsSpan(at * 24, 24);
                    Assert.Equal((uint)t, BinaryPrimitives.ReadUInt32LittleEndian(r));
                    Assert.Equal((ulong)((l * 8) + e), BinaryPrimitives.ReadUInt64LittleEndian(r[4..]));
                    Assert.Equal(1u, BinaryPrimitives.ReadUInt32LittleEndian(r[12..]));
                    int next = Array.FindIndex(keys, at + 1, k => k.Layer == l && k.Expert == e);
                    Assert.Equal(next < 0 ? -1L : next + 1, BinaryPrimitives.ReadInt64LittleEndian(r[16..]));
                    at++;
                }
            }
        }
    }

    [Fact]
    public void OracleGeneralImportRejectsAWrongNextAccess()
    {
        var b = new RoutingTraceBuilder(2, 4, false);
        b.AddStep([1, 2]);
        b.AddStep([3]);
        b.AddStep([1]);
        b.AddStep([]);
        var trace = b.Build();
        var ms = new MemoryStream();
        OracleGeneralExport.WriteBinary(trace, ms, objectSize: 1);
        ms.Position = 0;
        var back = OracleGeneralImport.ReadBinary(ms, "ok.bin", experts: 4, layers: 2);
        Assert.Equal(trace.StepStarts.ToArray(), back.StepStarts.ToArray());
        Assert.Equal(trace.AllExperts.ToArray(), back.AllExperts.ToArray());

        byte[] bytes = ms.ToArray();
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(16), 3); // record 0's next access is record 4 (1-based), not 3
        var e = Assert.Throws<InvalidDataException>(() => OracleGeneralImport.ReadBinary(new MemoryStream(bytes), "bad.bin", experts: 4, layers: 2));
        Assert.Contains("bad.bin: record 0 (offset 0)", e.Message);
    }
}
