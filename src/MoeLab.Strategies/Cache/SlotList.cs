namespace MoeLab.Strategies.Cache;

/// <summary>
/// Head and tail of an intrusive doubly linked list of cache slots whose links live in a shared
/// <see cref="SlotLinks"/> (a slot is on at most one list at a time). Front = newest.
/// </summary>
internal struct SlotList
{
    public int Head;
    public int Tail;
    public int Count;

    /// <summary>Sum of the sizes of the slots on this list, kept by the owner.</summary>
    public long Size;

    public static SlotList Empty => new() { Head = -1, Tail = -1 };
}

/// <summary>Previous/next links for every slot of a cache; grows with the slot arrays.</summary>
internal sealed class SlotLinks(int capacity)
{
    private int[] _prev = new int[capacity];
    private int[] _next = new int[capacity];

    public int Next(int slot) => _next[slot];

    public int Prev(int slot) => _prev[slot];

    public void Resize(int capacity)
    {
        Array.Resize(ref _prev, capacity);
        Array.Resize(ref _next, capacity);
    }

    public void PushFront(ref SlotList list, int slot, long size)
    {
        _prev[slot] = -1;
        _next[slot] = list.Head;
        if (list.Head >= 0) _prev[list.Head] = slot;
        else list.Tail = slot;
        list.Head = slot;
        list.Count++;
        list.Size += size;
    }

    public void Unlink(ref SlotList list, int slot, long size)
    {
        int p = _prev[slot], n = _next[slot];
        if (p >= 0) _next[p] = n;
        else list.Head = n;
        if (n >= 0) _prev[n] = p;
        else list.Tail = p;
        list.Count--;
        list.Size -= size;
    }

    public void MoveToFront(ref SlotList list, int slot)
    {
        if (list.Head == slot) return;
        Unlink(ref list, slot, 0);
        PushFront(ref list, slot, 0);
    }
}
