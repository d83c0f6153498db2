namespace MoeLab.Strategies.Cache;

/// <summary>
/// Indexed binary min-heap of cache slots ordered by (Major, Minor): LFU's (count, age), lfu-decay's decayed
/// count, belady's negated next use. Supports priority updates and removal of any slot in O(log n), no allocation
/// except when the slot arrays grow.
/// </summary>
internal sealed class SlotHeap(int capacity)
{
    private int[] _heap = new int[capacity];
    private int[] _position = new int[capacity]; // slot → index in _heap, -1 when absent
    private double[] _major = new double[capacity];
    private long[] _minor = new long[capacity];

    public int Count { get; private set; }

    /// <summary>The slot with the smallest priority. No side effects.</summary>
    public int Top => _heap[0];

    public double Major(int slot) => _major[slot];

    public void Resize(int capacity)
    {
        Array.Resize(ref _heap, capacity);
        Array.Resize(ref _position, capacity);
        Array.Resize(ref _major, capacity);
        Array.Resize(ref _minor, capacity);
    }

    public void Insert(int slot, double major, long minor)
    {
        _major[slot] = major;
        _minor[slot] = minor;
        _heap[Count] = slot;
        _position[slot] = Count;
        Count++;
        Up(Count - 1);
    }

    public void Update(int slot, double major, long minor)
    {
        _major[slot] = major;
        _minor[slot] = minor;
        int i = _position[slot];
        Up(i);
        Down(_position[slot]);
    }

    public void Remove(int slot)
    {
        int i = _position[slot];
        Count--;
        if (i != Count)
        {
            int last = _heap[Count];
            _heap[i] = last;
            _position[last] = i;
            Up(i);
            Down(_position[last]);
        }

        _position[slot] = -1;
    }

    private bool Less(int a, int b) =>
        _major[a] < _major[b] || (_major[a] == _major[b] && _minor[a] < _minor[b]);

    private void Up(int i)
    {
        int slot = _heap[i];
        while (i > 0)
        {
            int parent = (i - 1) >> 1;
            if (!Less(slot, _heap[parent])) break;
            _heap[i] = _heap[parent];
            _position[_heap[i]] = i;
            i = parent;
        }

        _heap[i] = slot;
        _position[slot] = i;
    }

    private void Down(int i)
    {
        int slot = _heap[i];
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= Count) break;
            if (child + 1 < Count && Less(_heap[child + 1], _heap[child])) child++;
            if (!Less(_heap[child], slot)) break;
            _heap[i] = _heap[child];
            _position[_heap[i]] = i;
            i = child;
        }

        _heap[i] = slot;
        _position[slot] = i;
    }
}
