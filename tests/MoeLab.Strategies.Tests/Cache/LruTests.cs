using MoeLab.Engine.Policies;
using MoeLab.Strategies.Cache;
using static MoeLab.Strategies.Tests.Cache.CacheTestKit;

namespace MoeLab.Strategies.Tests.Cache;

public sealed class LruTests
{
    [Theory]
    // Hand-counted: capacity 2 over A B A C B A → A,B miss; A hit; C miss (evicts B); B miss (evicts A); A miss.
    [InlineData("ABACBA", 2, "mmhmmm")]
    [InlineData("ABACBA", 3, "mmhmhh")]
    [InlineData("ABCABC", 2, "mmmmmm")]
    [InlineData("AAAA", 1, "mhhh")]
    // The classic reference string 1 2 3 4 1 2 5 1 2 3 4 5: 10 faults with 3 frames, 8 with 4.
    [InlineData("ABCDABEABCDE", 3, "mmmmmmmhhmmm")]
    [InlineData("ABCDABEABCDE", 4, "mmmmhhmhhmmm")]
    public void OutcomesMatchHandCountedSequences(string requests, int capacity, string expected) =>
        Assert.Equal(expected, Outcomes(new Lru(capacity), Letters(requests)));

    [Fact]
    public void EvictsTheLeastRecentlyUsedAndReportsIt()
    {
        var sink = new Evictions();
        var lru = new Lru(2);
        Outcomes(lru, Ids(0, 1, 0, 2), sink);
        Assert.Equal([new ExpertKey(0, 1)], sink.Keys);
        Assert.True(lru.Contains(new ExpertKey(0, 0)));
        Assert.Equal(2, lru.Used);
    }

    [Fact]
    public void ByteSizesEvictUntilTheNewExpertFits()
    {
        var lru = new Lru(100);
        lru.Admit(new ExpertKey(0, 0), 40, 0, null);
        lru.Admit(new ExpertKey(0, 1), 40, 1, null);
        lru.Admit(new ExpertKey(0, 2), 70, 2, null);
        Assert.Equal(1, lru.Count);
        Assert.Equal(70, lru.Used);
        Assert.False(lru.Admit(new ExpertKey(0, 3), 101, 3, null));
    }

    [Fact]
    public void RemoveFreesTheSlotAndKeepsTheOrderOfTheRest()
    {
        var lru = new Lru(3);
        Outcomes(lru, Letters("ABC"));
        lru.Remove(new ExpertKey(0, 1));
        Assert.Equal(2, lru.Count);
        Assert.Equal(2, lru.Used);
        var sink = new Evictions();
        lru.Admit(new ExpertKey(0, 3), 1, 3, sink);
        lru.Admit(new ExpertKey(0, 4), 1, 4, sink);
        Assert.Equal([new ExpertKey(0, 0)], sink.Keys);
    }

    [Fact]
    public void ManyKeysAcrossLayersStayConsistentWithAReferenceModel()
    {
        // A plain list-based LRU as the reference, over keys that collide in the index's low bits.
        var rng = new Random(7);
        var lru = new Lru(37);
        var reference = new List<ExpertKey>();
        for (int t = 0; t < 20_000; t++)
        {
            var key = new ExpertKey(rng.Next(8), rng.Next(16) * 64);
            bool expected = reference.Remove(key);
            if (expected) reference.Insert(0, key);
            else
            {
                reference.Insert(0, key);
                if (reference.Count > 37) reference.RemoveAt(reference.Count - 1);
            }

            bool hit = lru.Access(key, 1, t);
            if (!hit) lru.Admit(key, 1, t, null);
            Assert.Equal(expected, hit);
            if (rng.Next(50) == 0 && reference.Count > 0)
            {
                var gone = reference[rng.Next(reference.Count)];
                reference.Remove(gone);
                lru.Remove(gone);
            }
        }

        Assert.Equal(reference.Count, lru.Count);
        Assert.All(reference, k => Assert.True(lru.Contains(k)));
    }
}
