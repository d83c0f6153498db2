using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Cache;

/// <summary>Which fetched experts a cache keeps (the replacement policy then decides which ones leave).</summary>
public enum CacheAdmission
{
    /// <summary>Every fetched expert is inserted.</summary>
    Always,

    /// <summary>Only an expert fetched before, within a window of recent misses (filters one-off experts).</summary>
    SecondHit,

    /// <summary>Nothing is inserted: every miss is computed from a transient buffer (the streaming baseline).</summary>
    Bypass,
}

/// <summary>
/// Applies an admission rule in front of any replacement policy, so no policy implements admission itself.
/// Allocation-free: second-hit remembers recent misses in a bounded ring with an open-addressing index.
/// </summary>
public sealed class AdmissionFilter : ICachePolicy
{
    private readonly ICachePolicy _inner;
    private readonly CacheAdmission _admission;
    private readonly KeyIndex _seen;
    private readonly long[] _ring;
    private int _ringNext;
    private int _ringCount;

    public AdmissionFilter(ICachePolicy inner, CacheAdmission admission, int window)
    {
        if (window < 1) throw new ArgumentOutOfRangeException(nameof(window), window, "the second-hit window holds at least one expert");
        _inner = inner;
        _admission = admission;
        _seen = new KeyIndex(admission == CacheAdmission.SecondHit ? window : 1);
        _ring = new long[admission == CacheAdmission.SecondHit ? window : 1];
    }

    public string Name => _inner.Name;

    public long Capacity => _inner.Capacity;

    public long Used => _inner.Used;

    public int Count => _inner.Count;

    public CacheAdmission Admission => _admission;

    public ICachePolicy Inner => _inner;

    public bool Contains(ExpertKey key) => _inner.Contains(key);

    public bool Access(ExpertKey key, long size, long time) => _inner.Access(key, size, time);

    public bool Admit(ExpertKey key, long size, long time, IEvictionSink? evicted)
    {
        switch (_admission)
        {
            case CacheAdmission.Bypass:
                return _inner.Contains(key);
            case CacheAdmission.SecondHit:
                if (_inner.Contains(key)) return true;
                if (_seen.Find(key.Packed) < 0)
                {
                    Remember(key.Packed);
                    return false;
                }

                return _inner.Admit(key, size, time, evicted);
            default:
                return _inner.Admit(key, size, time, evicted);
        }
    }

    public void Remove(ExpertKey key) => _inner.Remove(key);

    private void Remember(long key)
    {
        if (_ringCount == _ring.Length) _seen.Remove(_ring[_ringNext]);
        else _ringCount++;
        _ring[_ringNext] = key;
        _seen.Add(key, _ringNext);
        _ringNext = (_ringNext + 1) % _ring.Length;
    }
}
