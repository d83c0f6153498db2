using System.Diagnostics;
using MoeLab.Engine.Io;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Experts;

/// <summary>
/// The in-RAM baseline: every routed expert read once, up front, into one native arena; every access is a hit.
/// </summary>
public sealed unsafe class ResidentExpertSource : IExpertSource, IDisposable
{
    private readonly ExpertStore _store;
    private readonly long[] _bufferOffset; // layer-major; where each expert's buffer starts in the arena
    private readonly (WeightLayout Gate, WeightLayout Up, WeightLayout Down)[] _layouts; // layer-major
    private byte* _arena;
    private int _token;
    private readonly int[] _requested;
    private readonly float[] _requestedWeights;
    private int _requestedCount;
    private int _requestedLayer = -1;
    private long _hits;
    private readonly ExpertLayerCounters _layerCounters;

    /// <summary>Reads every expert of <paramref name="layout"/> (buffered) into RAM.</summary>
    /// <param name="interleave">Repack each expert matrix into <see cref="WeightLayout.Interleaved8"/> where this CPU
    /// has a kernel for its type (<see cref="RowInterleave"/>).</param>
    /// <param name="hugePages">Whether the arena goes into transparent huge pages (<see cref="WeightMemory"/>).</param>
    public ResidentExpertSource(ExpertLayout layout, bool interleave = false, bool hugePages = true)
    {
        _store = new ExpertStore(layout, IoMode.Buffered);
        int n = layout.Layers * layout.ExpertsPerLayer;
        _bufferOffset = new long[n];
        _layouts = new (WeightLayout, WeightLayout, WeightLayout)[n];
        _requested = new int[layout.ExpertsPerLayer];
        _requestedWeights = new float[layout.ExpertsPerLayer];
        _layerCounters = new ExpertLayerCounters(layout.Layers);
        long total = 0;
        for (int l = 0; l < layout.Layers; l++)
        {
            for (int e = 0; e < layout.ExpertsPerLayer; e++)
            {
                _bufferOffset[(l * layout.ExpertsPerLayer) + e] = total;
                total += (_store.Place(0, l, e, 3).BufferOffset + 63) / 64 * 64;
            }
        }

        ResidentBytes = total;
        long start = Stopwatch.GetTimestamp();
        _arena = WeightMemory.Allocate(total, hugePages);
        try
        {
            for (int l = 0; l < layout.Layers; l++)
            {
                for (int e = 0; e < layout.ExpertsPerLayer; e++)
                {
                    byte* buffer = _arena + _bufferOffset[(l * layout.ExpertsPerLayer) + e];
                    LoadedBytes += _store.ReadExpert(0, l, e, buffer);
                    if (interleave)
                    {
                        var v = _store.View(0, l, e, buffer);
                        _layouts[(l * layout.ExpertsPerLayer) + e] = (Interleave(v.Gate), Interleave(v.Up), Interleave(v.Down));
                    }
                }
            }
        }
        catch
        {
            Dispose();
            throw;
        }

        LoadSeconds = ExpertSourceCounters.Seconds(Stopwatch.GetTimestamp() - start);
        _store.Dispose();
    }

    public ExpertLayout Layout => _store.Layout;

    /// <summary>Native bytes the experts occupy (their own bytes plus 64-byte alignment of each slice).</summary>
    public long ResidentBytes { get; }

    /// <summary>Bytes read from the file at load.</summary>
    public long LoadedBytes { get; }

    public double LoadSeconds { get; }

    public IExpertEventSink? EventSink { get; set; }

    public ExpertSourceCounters Counters => new(_hits, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    public ExpertLayerCounters LayerCounters => _layerCounters;

    public bool AlwaysReady => true;

    public void BeginToken(int token) => _token = token;

    public void Request(in RoutingObservation observed)
    {
        // Kept only so events carry the router weight.
        _token = observed.Token;
        _requestedLayer = observed.Layer;
        _requestedCount = Math.Min(observed.Experts.Length, _requested.Length);
        observed.Experts[.._requestedCount].CopyTo(_requested);
        if (observed.Weights.Length >= _requestedCount) observed.Weights[.._requestedCount].CopyTo(_requestedWeights);
        else _requestedWeights.AsSpan(0, _requestedCount).Fill(float.NaN);
    }

    public ExpertWeights Acquire(int layer, int expert)
    {
        ObjectDisposedException.ThrowIf(_arena == null, this);
        var layout = _store.Layout;
        if ((uint)layer >= (uint)layout.Layers || (uint)expert >= (uint)layout.ExpertsPerLayer)
        {
            throw new ArgumentOutOfRangeException(nameof(expert), $"expert L{layer}/E{expert} outside {layout.Layers} layers × {layout.ExpertsPerLayer} experts");
        }

        _hits++;
        _layerCounters.Count(layer, ExpertOutcome.Hit);
        if (EventSink is { } sink)
        {
            float weight = float.NaN;
            if (layer == _requestedLayer)
            {
                int i = _requested.AsSpan(0, _requestedCount).IndexOf(expert);
                if (i >= 0) weight = _requestedWeights[i];
            }

            sink.OnExpert(new ExpertEvent(_token, layer, expert, weight, ExpertOutcome.Hit, 0, 0, 0, 0, 0));
        }

        int slot = (layer * layout.ExpertsPerLayer) + expert;
        var v = _store.View(0, layer, expert, _arena + _bufferOffset[slot]);
        var (g, u, d) = _layouts[slot];
        return g == WeightLayout.Rows && u == WeightLayout.Rows && d == WeightLayout.Rows ? v
            : new ExpertWeights(WithLayout(v.Gate, g), WithLayout(v.Up, u), WithLayout(v.Down, d));
    }

    /// <summary>Bytes of expert matrices repacked into <see cref="WeightLayout.Interleaved8"/>.</summary>
    public long InterleavedBytes { get; private set; }

    private WeightLayout Interleave(in WeightMatrix m)
    {
        if (!RowInterleave.Worthwhile(m)) return WeightLayout.Rows;
        RowInterleave.Interleave(m);
        InterleavedBytes += m.TotalBytes;
        return WeightLayout.Interleaved8;
    }

    private static WeightMatrix WithLayout(in WeightMatrix m, WeightLayout layout) =>
        layout == m.Layout ? m : new WeightMatrix(m.Type, m.Rows, m.Cols, m.Data, layout);

    public void Release(int layer, int expert)
    {
    }

    public void Dispose()
    {
        if (_arena != null)
        {
            WeightMemory.Free(_arena);
            _arena = null;
        }

        _store.Dispose();
    }
}
