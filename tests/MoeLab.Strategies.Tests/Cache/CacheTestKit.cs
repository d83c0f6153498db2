using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Tests.Cache;

/// <summary>Replays hand-made sequences (letters or ids of layer 0) and records what was evicted.</summary>
internal static class CacheTestKit
{
    internal sealed class Evictions : IEvictionSink
    {
        public List<ExpertKey> Keys { get; } = [];

        public void OnEvicted(ExpertKey key, long size) => Keys.Add(key);
    }

    /// <summary>"ABCA" → keys of layer 0, A = expert 0.</summary>
    public static ExpertKey[] Letters(string sequence) => sequence.Select(c => new ExpertKey(0, c - 'A')).ToArray();

    public static ExpertKey[] Ids(params int[] ids) => ids.Select(i => new ExpertKey(0, i)).ToArray();

    /// <summary>Replays with unit sizes; returns the hit/miss outcome of every request ('h' or 'm').</summary>
    public static string Outcomes(ICachePolicy cache, ExpertKey[] requests, Evictions? sink = null)
    {
        var outcome = new char[requests.Length];
        for (int t = 0; t < requests.Length; t++)
        {
            bool hit = cache.Access(requests[t], 1, t);
            if (!hit) cache.Admit(requests[t], 1, t, sink);
            outcome[t] = hit ? 'h' : 'm';
        }

        return new string(outcome);
    }

    public static int Misses(ICachePolicy cache, ExpertKey[] requests) => Outcomes(cache, requests).Count(c => c == 'm');
}
