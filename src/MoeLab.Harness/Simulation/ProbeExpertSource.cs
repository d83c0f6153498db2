using System.Diagnostics;
using System.Runtime.InteropServices;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Io;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Policies;

namespace MoeLab.Harness.Simulation;

/// <summary>
/// The expert source of the compute probe: a fixed set of the file's own experts in RAM, in the file layout (as
/// streamed experts are), standing in for every routed expert (request (l, e) is served by slot (l·E + e) mod n). The
/// model's forward pass then does all of a decode step's compute — attention over the KV cache, routers, the experts'
/// matvecs, the output head — with no reads, over a working set beyond the CPU caches.
/// </summary>
public sealed unsafe class ProbeExpertSource : IExpertSource, IDisposable
{
    private readonly ExpertStore _store;
    private readonly (int Layer, int Expert)[] _slots;
    private readonly ManualResetEventSlim _never = new(false);
    private byte* _slab;

    public ProbeExpertSource(ExpertLayout layout, int slots = 64)
    {
        _store = new ExpertStore(layout, IoMode.Buffered);
        int n = Math.Min(slots, layout.Layers * layout.ExpertsPerLayer);
        _slots = new (int, int)[n];
        // The engine's streaming slab is in huge pages (StreamingOptions.HugePages); the matvecs read it through the TLB.
        _slab = WeightMemory.AllocateWithin(_store.BufferBytes * n, ExpertStore.BufferAlignment, hugePages: true);
        var rng = new Random(5);
        for (int i = 0; i < n; i++)
        {
            _slots[i] = (i % layout.Layers, rng.Next(layout.ExpertsPerLayer));
            _store.ReadExpert(0, _slots[i].Layer, _slots[i].Expert, _slab + (i * _store.BufferBytes));
        }
    }

    /// <summary>
    /// Zero: every expert is ready at once. Otherwise each expert is handed out alone after a blocking wait this long, as
    /// a streamed expert after a stall (the model counts the wait as stall; the compute threads fall asleep in it).
    /// </summary>
    public TimeSpan StallBeforeEach { get; set; }

    public void Request(in RoutingObservation observed)
    {
    }

    /// <summary>Every expert is in RAM, so all those not done are ready: the model computes them in one batch, as the engine does a layer's hits.</summary>
    public int ReadyExperts(int layer, ReadOnlySpan<int> experts, ReadOnlySpan<bool> done, Span<bool> ready)
    {
        if (StallBeforeEach > TimeSpan.Zero)
        {
            // Blocks as the engine's router thread does on its monitor. The timeout is counted on a coarse clock (it returned
            // after 16 of 20 ms once), so wait again for what is left by the Stopwatch.
            long start = Stopwatch.GetTimestamp();
            for (TimeSpan left; (left = StallBeforeEach - Stopwatch.GetElapsedTime(start)) > TimeSpan.Zero;)
            {
                _never.Wait(left < TimeSpan.FromMilliseconds(1) ? TimeSpan.FromMilliseconds(1) : left);
            }

            ready.Clear();
            ready[done.IndexOf(false)] = true;
            return 1;
        }

        int n = 0;
        for (int i = 0; i < experts.Length; i++)
        {
            ready[i] = !done[i];
            if (ready[i]) n++;
        }

        return n;
    }

    public ExpertWeights Acquire(int layer, int expert)
    {
        int i = ((layer * _store.Layout.ExpertsPerLayer) + expert) % _slots.Length;
        return _store.View(0, _slots[i].Layer, _slots[i].Expert, _slab + (i * _store.BufferBytes));
    }

    public void Release(int layer, int expert)
    {
    }

    public void Dispose()
    {
        if (_slab is not null)
        {
            WeightMemory.Free(_slab);
            _slab = null;
        }

        _store.Dispose();
        _never.Dispose();
    }
}
