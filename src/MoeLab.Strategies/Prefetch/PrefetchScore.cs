using MoeLab.Engine.Policies;

namespace MoeLab.Strategies.Prefetch;

/// <summary>
/// Scores a prefetcher's predictions against the experts the router then chose: precision = correct predictions /
/// predictions (of steps that were observed), recall = correctly predicted requests / all requests observed.
/// A prediction made at (token t, layer l) for layer l' targets token t when l' &gt; l, else token t + 1; repeated
/// predictions of the same expert for the same step count once. Allocation-free; used by the engine and the simulator.
/// </summary>
public sealed class PrefetchScore
{
    private readonly int _layers;
    private readonly int _experts;
    private readonly long[] _slotStep;   // step whose predictions a ring slot holds, or -1
    private readonly int[] _slotCount;   // distinct predicted experts in the slot
    private readonly long[] _stamp;      // [slot * experts + e] = step + 1 when predicted for that step

    public PrefetchScore(int layers, int expertsPerLayer)
    {
        _layers = layers;
        _experts = expertsPerLayer;
        _slotStep = new long[layers];
        Array.Fill(_slotStep, -1);
        _slotCount = new int[layers];
        _stamp = new long[layers * expertsPerLayer];
    }

    /// <summary>Predictions of steps that were then observed.</summary>
    public long Predictions { get; private set; }

    /// <summary>Predictions the router then confirmed.</summary>
    public long Correct { get; private set; }

    /// <summary>Requests observed.</summary>
    public long Requests { get; private set; }

    /// <summary>Predictions whose target step was never observed (dropped, not in <see cref="Predictions"/>).</summary>
    public long Unresolved { get; private set; }

    public double Precision => Predictions == 0 ? 0 : (double)Correct / Predictions;

    public double Recall => Requests == 0 ? 0 : (double)Correct / Requests;

    /// <summary>Records what a prefetcher predicted after observing (token, layer).</summary>
    public void Predicted(int token, int layer, ReadOnlySpan<ExpertKey> predictions)
    {
        foreach (var key in predictions)
        {
            if ((uint)key.Layer >= (uint)_layers || (uint)key.Expert >= (uint)_experts) continue;
            long step = (long)(key.Layer > layer ? token : token + 1) * _layers + key.Layer;
            int slot = key.Layer;
            if (_slotStep[slot] != step)
            {
                if (_slotStep[slot] >= 0) Unresolved += _slotCount[slot];
                _slotStep[slot] = step;
                _slotCount[slot] = 0;
            }

            ref long stamp = ref _stamp[slot * _experts + key.Expert];
            if (stamp == step + 1) continue;
            stamp = step + 1;
            _slotCount[slot]++;
        }
    }

    /// <summary>Records what the router chose at (token, layer) and scores the predictions made for that step.</summary>
    public void Observed(int token, int layer, ReadOnlySpan<int> experts)
    {
        long step = (long)token * _layers + layer;
        Requests += experts.Length;
        int slot = layer;
        if (_slotStep[slot] != step) return;
        Predictions += _slotCount[slot];
        foreach (int e in experts)
        {
            if ((uint)e < (uint)_experts && _stamp[slot * _experts + e] == step + 1) Correct++;
        }

        _slotStep[slot] = -1;
        _slotCount[slot] = 0;
    }
}
