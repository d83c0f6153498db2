using MoeLab.Engine.Telemetry;

namespace MoeLab.Harness.Tests.Traces;

internal static class TraceAssert
{
    public static void Identical(RoutingTrace expected, RoutingTrace actual, bool compareHeader = true)
    {
        Assert.Equal(expected.Layers, actual.Layers);
        Assert.Equal(expected.ExpertsPerLayer, actual.ExpertsPerLayer);
        Assert.Equal(expected.Tokens, actual.Tokens);
        Assert.Equal(expected.StepStarts.ToArray(), actual.StepStarts.ToArray());
        Assert.Equal(expected.AllExperts.ToArray(), actual.AllExperts.ToArray());
        Assert.Equal(expected.HasWeights, actual.HasWeights);
        Assert.Equal(expected.AllWeights.ToArray(), actual.AllWeights.ToArray());
        if (compareHeader) Assert.Equal(expected.Header.OrderBy(p => p.Key), actual.Header.OrderBy(p => p.Key));
    }
}
