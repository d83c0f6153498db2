namespace MoeLab.Strategies.Cache;

/// <summary>
/// Open-addressing map from <see cref="Engine.Policies.ExpertKey.Packed"/> to a small int (a slot), with linear
/// probing and backward-shift deletion (no tombstones), so lookups stay short however many keys come and go.
/// Allocates only when it grows past half full.
/// </summary>
internal sealed class KeyIndex
{
    private long[] _keys;
    private int[] _values; // -1 = empty bucket
    private int _mask;

    public KeyIndex(int expectedKeys)
    {
        int size = 16;
        while (size < expectedKeys * 2) size <<= 1;
        _keys = new long[size];
        _values = new int[size];
        Array.Fill(_values, -1);
        _mask = size - 1;
    }

    public int Count { get; private set; }

    /// <summary>The value stored for key, or -1.</summary>
    public int Find(long key)
    {
        int i = Bucket(key);
        while (true)
        {
            int v = _values[i];
            if (v < 0) return -1;
            if (_keys[i] == key) return v;
            i = (i + 1) & _mask;
        }
    }

    /// <summary>Adds a key that is not present.</summary>
    public void Add(long key, int value)
    {
        if ((Count + 1) * 2 > _values.Length) Grow();
        int i = Bucket(key);
        while (_values[i] >= 0) i = (i + 1) & _mask;
        _keys[i] = key;
        _values[i] = value;
        Count++;
    }

    public bool Remove(long key)
    {
        int i = Bucket(key);
        while (true)
        {
            if (_values[i] < 0) return false;
            if (_keys[i] == key) break;
            i = (i + 1) & _mask;
        }

        // Backward-shift: pull later entries of the probe run into the hole so no lookup stops early.
        int hole = i;
        int j = i;
        while (true)
        {
            j = (j + 1) & _mask;
            if (_values[j] < 0) break;
            int home = Bucket(_keys[j]);
            bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
            if (!movable) continue;
            _keys[hole] = _keys[j];
            _values[hole] = _values[j];
            hole = j;
        }

        _values[hole] = -1;
        Count--;
        return true;
    }

    public void Clear()
    {
        Array.Fill(_values, -1);
        Count = 0;
    }

    private int Bucket(long key)
    {
        // Fibonacci hashing spreads (layer, expert) pairs, whose low bits are dense, over the table.
        ulong h = (ulong)key * 0x9E3779B97F4A7C15UL;
        return (int)(h >> 32) & _mask;
    }

    private void Grow()
    {
        long[] keys = _keys;
        int[] values = _values;
        _keys = new long[keys.Length * 2];
        _values = new int[values.Length * 2];
        Array.Fill(_values, -1);
        _mask = _values.Length - 1;
        Count = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            if (values[i] >= 0) Add(keys[i], values[i]);
        }
    }
}
