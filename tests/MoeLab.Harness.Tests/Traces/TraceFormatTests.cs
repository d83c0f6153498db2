using System.Buffers.Binary;
using MoeLab.Engine.Telemetry;
using MoeLab.Harness.Traces;

namespace MoeLab.Harness.Tests.Traces;

public sealed class TraceFormatTests
{
    private static RoutingTrace Synth(bool weights = true, int tokens = 50) => SyntheticTrace.Generate(new SyntheticTraceOptions
    {
        Layers = 6, Experts = 16, ExpertsPerToken = 3, Tokens = tokens, Weights = weights, Seed = 7, Model = "test-model",
    });

    [Fact]
    public void SynthExportMoelabImportIsIdentical()
    {
        var trace = Synth();
        var ms = new MemoryStream();
        MoelabTraceFormat.Write(trace, ms);
        ms.Position = 0;
        TraceAssert.Identical(trace, MoelabTraceFormat.Read(ms, "mem"));
    }

    [Fact]
    public void HalfWeightsRoundTripToTheirHalfValues()
    {
        var trace = Synth();
        var ms = new MemoryStream();
        MoelabTraceFormat.Write(trace, ms, halfWeights: true);
        ms.Position = 0;
        var back = MoelabTraceFormat.Read(ms, "mem");
        Assert.Equal(trace.AllExperts.ToArray(), back.AllExperts.ToArray());
        var expected = trace.AllWeights.ToArray().Select(w => (float)(Half)w).ToArray();
        Assert.Equal(expected, back.AllWeights.ToArray());
    }

    [Fact]
    public void FixedKTraceStoresNoCountsAndVariableKTraceDoes()
    {
        var fixedK = Synth(weights: false, tokens: 4); // 4 tokens × 6 layers × 3 ids
        var ms = new MemoryStream();
        MoelabTraceFormat.Write(fixedK, ms);
        long headerEnd = ms.Length - (4 * 6 * 3 * 2);
        Assert.Equal(4, BinaryPrimitives.ReadUInt16LittleEndian(ms.ToArray().AsSpan(10)) & 4);

        var b = new RoutingTraceBuilder(2, 8, false);
        b.AddStep([0, 1, 2, 3, 4, 5, 6, 7]);
        b.AddStep([0, 1, 2, 3, 4, 5, 6, 7]);
        b.AddStep([3]);
        b.AddStep([1, 6]);
        var variable = b.Build();
        var ms2 = new MemoryStream();
        MoelabTraceFormat.Write(variable, ms2);
        ms2.Position = 0;
        TraceAssert.Identical(variable, MoelabTraceFormat.Read(ms2, "mem"));
        Assert.True(headerEnd > 40);
    }

    [Fact]
    public void TruncatedFileNamesTheOffset()
    {
        var ms = new MemoryStream();
        MoelabTraceFormat.Write(Synth(), ms);
        var cut = new MemoryStream(ms.ToArray()[..(int)(ms.Length - 5)]);
        var e = Assert.Throws<InvalidDataException>(() => MoelabTraceFormat.Read(cut, "cut.mltrace"));
        Assert.Contains("cut.mltrace: offset", e.Message);
        var bad = new MemoryStream("NOTATRACE-------------------------------------------"u8.ToArray());
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => MoelabTraceFormat.Read(bad, "x")).Message);
    }

    [Fact]
    public void CsvRoundTripIsIdentical()
    {
        var trace = Synth();
        var sw = new StringWriter();
        TraceCsvFormat.Write(trace, sw);
        TraceAssert.Identical(trace, TraceCsvFormat.Read(new StringReader(sw.ToString()), "mem.csv"));
    }

    [Fact]
    public void JsonlRoundTripKeepsStepsAndWeights()
    {
        var trace = Synth();
        var ms = new MemoryStream();
        JsonlTraceFormat.Write(trace, ms);
        var back = JsonlTraceFormat.Read(new StringReader(System.Text.Encoding.UTF8.GetString(ms.ToArray())), "mem.jsonl", trace.Layers, trace.ExpertsPerLayer);
        TraceAssert.Identical(trace, back, compareHeader: false);
    }

    [Fact]
    public void JsonlAcceptsOtherKeySpellingsInAnyOrder()
    {
        string text = """
            {"layer_id": 1, "token_id": 0, "topk_ids": [2, 0], "probs": [0.7, 0.3]}
            {"layer_id": 0, "token_id": 0, "topk_ids": [1, 3], "probs": [0.6, 0.4]}
            {"layer_id": 0, "token_id": 1, "topk_ids": [1, 2], "probs": [0.5, 0.5]}
            {"layer_id": 1, "token_id": 1, "topk_ids": [3, 2], "probs": [0.9, 0.1]}
            """;
        var t = JsonlTraceFormat.Read(new StringReader(text), "x.jsonl");
        Assert.Equal(2, t.Layers);
        Assert.Equal(4, t.ExpertsPerLayer);
        Assert.Equal([1, 3, 2, 0, 1, 2, 3, 2], t.AllExperts.ToArray());
        Assert.Equal(0.7f, t.Weights(0, 1)[0]);
    }

    [Fact]
    public void JsonlMissingStepIsAnError()
    {
        string text = "{\"token\": 0, \"layer\": 0, \"experts\": [1]}\n{\"token\": 1, \"layer\": 1, \"experts\": [1]}\n";
        var e = Assert.Throws<InvalidDataException>(() => JsonlTraceFormat.Read(new StringReader(text), "x.jsonl"));
        Assert.Contains("token 0, layer 1", e.Message);
    }

    [Fact]
    public void LinesImportHandlesVariableStepsAndReportsLineNumbers()
    {
        var t = LinesTraceFormat.Read(new StringReader("0,1,2,3\n0,1,2,3\n3,1\n2,0\n"), "x.lines", layers: 2);
        Assert.Equal(2, t.Tokens);
        Assert.Equal(4, t.ExpertsPerLayer);
        Assert.Equal(12, t.Requests);
        Assert.Equal(4, t.RequestSequence(1).Length);
        Assert.Equal(new Engine.Policies.ExpertKey(0, 3), t.RequestSequence(1)[0]);
        var e = Assert.Throws<InvalidDataException>(() => LinesTraceFormat.Read(new StringReader("1,2\n1,x\n"), "y.lines", 2));
        Assert.Contains("y.lines: line 2", e.Message);
        Assert.Throws<InvalidDataException>(() => LinesTraceFormat.Read(new StringReader("1,2\n1,2\n1,2\n"), "z.lines", 2));
    }

    [Fact]
    public void MixtralLinesTraceHasTheDocumentedCounts()
    {
        const string path = "/work/shared/traces/mixtral-8x7b-h39s.lines";
        if (!File.Exists(path)) return; // the real trace lives outside the repository; absent on other machines
        var t = LinesTraceFormat.Read(path, layers: 32);
        Assert.Equal(24_768, t.Steps);
        Assert.Equal(8, t.ExpertsPerLayer);
        Assert.Equal(774, t.Tokens);
        Assert.Equal(49_472, t.RequestSequence(skipTokens: 1).Length);
        Assert.Equal(8, t.Experts(0, 31).Length); // the prefill block lists all 8 experts
        Assert.Equal(2, t.Experts(1, 0).Length);
    }

    [Fact]
    public void OracleGeneralExportIsByteExact()
    {
        // 2 layers, 4 experts, 2 tokens: requests (L0E1, L0E2, L1E3) then (L0E1, L1E0).
        var b = new RoutingTraceBuilder(2, 4, false);
        b.AddStep([1, 2]);
        b.AddStep([3]);
        b.AddStep([1]);
        b.AddStep([0]);
        var trace = b.Build();
        var ms = new MemoryStream();
        OracleGeneralExport.WriteBinary(trace, ms, objectSize: 1);
        // obj_id = layer*4 + expert: 1, 2, 7, 1, 4. Next access (1-based vtime): req0 → req3 ⇒ 4; others none ⇒ -1.
        byte[] expected =
        [
            0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255,
            0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255,
            1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255,
            1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255,
        ];
        Assert.Equal(expected, ms.ToArray());

        var sw = new StringWriter();
        OracleGeneralExport.WriteCsv(trace, sw, objectSize: 3_000_000_000u, skipTokens: 1);
        Assert.Equal("0,1,3000000000,-1\n0,4,3000000000,-1\n", sw.ToString());
    }

    [Fact]
    public void OracleGeneralNextAccessCountsFromOneAcrossTokens()
    {
        var b = new RoutingTraceBuilder(1, 3, false);
        b.AddStep([0, 1]);
        b.AddStep([1, 2]);
        b.AddStep([0]);
        var r = OracleGeneralExport.Records(b.Build(), 1);
        Assert.Equal([5L, 3, -1, -1, -1], r.Select(x => x.NextAccessVtime));
        Assert.Equal([0u, 0, 1, 1, 2], r.Select(x => x.ClockTime));
    }

    [Fact]
    public void SynthIsDeterministicAndRecordsItsParameters()
    {
        var a = Synth();
        var b = Synth();
        TraceAssert.Identical(a, b);
        Assert.Equal("0.8", a.Header["synth.zipf_exponent"]);
        Assert.Equal("7", a.Header["synth.seed"]);
        for (int t = 0; t < a.Tokens; t++)
            for (int l = 0; l < a.Layers; l++)
                Assert.Equal(3, a.Experts(t, l).ToArray().Distinct().Count());
    }

    [Fact]
    public void SynthReuseParameterControlsTokenReuse()
    {
        var sticky = SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 4, Experts = 64, ExpertsPerToken = 2, Tokens = 200, ReuseProbability = 1, CrossLayerCorrelation = 0 });
        Assert.Equal(1.0, TraceStats.Of(sticky).TokenReuse);
        var fresh = SyntheticTrace.Generate(new SyntheticTraceOptions { Layers = 4, Experts = 64, ExpertsPerToken = 2, Tokens = 200, ReuseProbability = 0, CrossLayerCorrelation = 0, ZipfExponent = 0 });
        Assert.InRange(TraceStats.Of(fresh).TokenReuse, 0.0, 0.15); // uniform draws: ≈ 2/64 chance of a repeat
        Assert.Throws<ArgumentException>(() => SyntheticTrace.Generate(new SyntheticTraceOptions { ReuseProbability = 0.7, CrossLayerCorrelation = 0.5 }));
    }
}
