namespace MoeLab.Engine.Policies;

/// <summary>
/// Replacement and admission over expert keys (libCacheSim's find / insert / evict / remove).
/// The policy decides only which keys are resident; the caller (engine or simulator) owns the data.
/// Sizes are in the cache's unit: bytes in the engine; bytes or 1 per expert in the simulator.
/// Time is the caller's monotonic request counter, which offline policies (belady) index their future with.
/// </summary>
public interface ICachePolicy
{
    string Name { get; }

    long Capacity { get; }

    long Used { get; }

    int Count { get; }

    /// <summary>Whether key is resident. No side effects.</summary>
    bool Contains(ExpertKey key);

    /// <summary>
    /// A demand request for key at time. On a hit, updates the policy's recency/frequency state and returns true.
    /// On a miss returns false; the caller fetches the expert and then calls <see cref="Admit"/>.
    /// </summary>
    bool Access(ExpertKey key, long size, long time);

    /// <summary>
    /// Offers a fetched expert (after a demand miss, or a prefetch). The policy either inserts it, evicting victims
    /// until it fits (each reported to <paramref name="evicted"/>), or declines (admission said no: the caller
    /// computes from a transient buffer). Returns whether it was inserted. A key already resident is a no-op (true).
    /// </summary>
    bool Admit(ExpertKey key, long size, long time, IEvictionSink? evicted);

    /// <summary>Drops key if resident (a stale prefetch, a precision change). No-op otherwise.</summary>
    void Remove(ExpertKey key);
}

/// <summary>Receives the keys a cache policy evicts, so the owner can release their buffers. Allocation-free.</summary>
public interface IEvictionSink
{
    void OnEvicted(ExpertKey key, long size);
}
