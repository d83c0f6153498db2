using MoeLab.Engine.Policies;
using MoeLab.Strategies.Cache;
using static MoeLab.Strategies.Tests.Cache.CacheTestKit;

namespace MoeLab.Strategies.Tests.Cache;

public sealed class FifoTests
{
    [Theory]
    [InlineData("ABACBA", 2, "mmhmhm")] // C evicts A (admitted first) although A was just used
    [InlineData("ABCDABEABCDE", 3, "mmmmmmmhhmmh")] // Belady's anomaly: 9 faults with 3 frames ...
    [InlineData("ABCDABEABCDE", 4, "mmmmhhmmmmmm")] // ... and 10 with 4
    public void OutcomesMatchHandCountedSequences(string requests, int capacity, string expected) =>
        Assert.Equal(expected, Outcomes(new Fifo(capacity), Letters(requests)));
}

public sealed class LfuTests
{
    [Theory]
    [InlineData("AABCA", 2, "mhmmh")] // C evicts B (count 1), not A (count 2); LRU would miss A
    [InlineData("ABCA", 2, "mmmm")] // equal counts evict in arrival order
    public void OutcomesMatchHandCountedSequences(string requests, int capacity, string expected) =>
        Assert.Equal(expected, Outcomes(new Lfu(capacity), Letters(requests)));

    [Fact]
    public void TiesEvictTheExpertThatReachedItsCountEarliest()
    {
        // A and B both reach count 2; B got there first, so C evicts B; then B evicts C (count 1).
        var sink = new Evictions();
        Assert.Equal("mmhhmmh", Outcomes(new Lfu(2), Letters("ABBACBA"), sink));
        Assert.Equal([new ExpertKey(0, 1), new ExpertKey(0, 2)], sink.Keys);
    }

    [Fact]
    public void ReadmittedExpertsStartCountingAgain()
    {
        // A reaches 3 and is removed; back at count 1 it is the first to go, although B has only 2.
        var lfu = new Lfu(2);
        Outcomes(lfu, Letters("AAAB"));
        lfu.Remove(new ExpertKey(0, 0));
        var sink = new Evictions();
        Assert.Equal("mhm", Outcomes(lfu, Letters("ABC"), sink));
        Assert.Equal([new ExpertKey(0, 0)], sink.Keys);
    }
}
