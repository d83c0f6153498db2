using System.Diagnostics;
using System.Numerics.Tensors;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Model;

/// <summary>Sees each layer's routing decision as the engine makes it (trace recording, telemetry). Must not allocate.</summary>
public interface IRoutingObserver
{
    void Observe(in RoutingObservation observed);

    /// <summary>
    /// Whether this observer takes a prompt chunk's decisions layer by layer (every token of the chunk at layer 0,
    /// then at layer 1, …), each tagged with its token position; then <see cref="MoeModel.ForwardPrompt(ReadOnlySpan{int})"/>
    /// stays batched with it attached. False: decisions arrive token by token as in decoding, which recorders that
    /// append in arrival order (routing traces) need.
    /// </summary>
    bool AcceptsLayerMajorOrder => false;
}

/// <summary>
/// One layer's sparse FFN: router softmax over all experts → top-k → renormalized weights (when the architecture
/// does) → optional routing policy → the chosen experts, fetched through the <see cref="IExpertSource"/>, each
/// computing down(silu(gate·x) ⊙ up·x), summed by weight; plus the always-on shared expert where the model has one
/// (Qwen3.5: scaled by sigmoid(shared-gate · x)).
/// </summary>
public sealed partial class MoeBlock
{
    private readonly ModelConfig _c;
    private readonly ComputePool _pool;
    private readonly int _layer, _moeIndex;
    private readonly WeightMatrix _router;
    private readonly WeightMatrix? _sharedGate, _sharedUp, _sharedDown, _sharedGateInput;
    private readonly float[] _probs, _weights, _gate, _up, _expertOut, _sharedScalar;
    private readonly float[] _routedOut; // one hidden-sized output per routed expert, summed in routing order
    private readonly bool[] _computed;
    private readonly int[] _experts;
    private readonly QuantizedVector _xq, _hq;

    // all routed experts at once (an always-ready source): gate/up pairs, downs, their inputs, and the gate‖up outputs
    private readonly WeightMatrix[] _gateUps, _downs;
    private readonly QuantizedVector[] _gateUpInputs, _downInputs;
    private readonly float[] _gatesUps;
    private readonly bool[] _ready; // which routed experts the current batch computes
    private readonly int[] _batch;  // batch position → routing slot
    private readonly float[] _batchOut; // a batch's down outputs when its experts are not routing slots 0..n-1

    public MoeBlock(ModelConfig c, ResidentTensors w, int layer, int moeIndex, ComputePool pool)
    {
        _c = c;
        _pool = pool;
        _layer = layer;
        _moeIndex = moeIndex;
        string p = $"blk.{layer}.";
        _router = w.Matrix(p + "ffn_gate_inp.weight", c.Experts, c.Hidden);
        if (w.Has(p + "ffn_gate_shexp.weight"))
        {
            int sff = c.SharedFeedForward > 0 ? c.SharedFeedForward : (int)w.Info(p + "ffn_gate_shexp.weight").Dim(1);
            _sharedGate = w.Matrix(p + "ffn_gate_shexp.weight", sff, c.Hidden);
            _sharedUp = w.Matrix(p + "ffn_up_shexp.weight", sff, c.Hidden);
            _sharedDown = w.Matrix(p + "ffn_down_shexp.weight", c.Hidden, sff);
            if (w.Has(p + "ffn_gate_inp_shexp.weight"))
            {
                _sharedGateInput = w.Matrix(p + "ffn_gate_inp_shexp.weight", 1, c.Hidden);
            }
        }

        int ff = Math.Max(c.ExpertFeedForward, _sharedGate?.Rows ?? 0);
        _probs = new float[c.Experts];
        _experts = new int[c.ExpertsUsed];
        _weights = new float[c.ExpertsUsed];
        _gate = new float[ff];
        _up = new float[ff];
        _expertOut = new float[c.Hidden];
        _routedOut = new float[c.ExpertsUsed * c.Hidden];
        _computed = new bool[c.ExpertsUsed];
        _sharedScalar = new float[1];
        _xq = new QuantizedVector(c.Hidden);
        _hq = new QuantizedVector(ff);
        _gateUps = new WeightMatrix[2 * c.ExpertsUsed];
        _downs = new WeightMatrix[c.ExpertsUsed];
        _gateUpInputs = new QuantizedVector[2 * c.ExpertsUsed];
        _gateUpInputs.AsSpan().Fill(_xq);
        _downInputs = new QuantizedVector[c.ExpertsUsed];
        for (int j = 0; j < _downInputs.Length; j++)
        {
            _downInputs[j] = new QuantizedVector(c.ExpertFeedForward);
        }

        _gatesUps = new float[2 * c.ExpertsUsed * c.ExpertFeedForward];
        _ready = new bool[c.ExpertsUsed];
        _batch = new int[c.ExpertsUsed];
        _batchOut = new float[c.ExpertsUsed * c.Hidden];
    }

    /// <summary>Router probabilities for an already-normed input (also what next-gate prefetching probes).</summary>
    public void RouterProbabilities(ReadOnlySpan<float> xNormed, Span<float> probabilities)
    {
        _xq.Set(xNormed);
        _pool.MatVec(_router, _xq, probabilities);
        TensorPrimitives.SoftMax(probabilities, probabilities);
    }

    /// <summary>
    /// Computes the block for one token: <paramref name="xNormed"/> is the FFN-normed residual, <paramref name="residual"/>
    /// the residual stream before the norm (what prefetchers see); the result is written to <paramref name="output"/>.
    /// Returns the seconds spent waiting for experts (stall).
    /// </summary>
    public double Forward(ReadOnlySpan<float> xNormed, ReadOnlySpan<float> residual, int token, Span<float> output, in MoeRuntime rt)
    {
        RouterProbabilities(xNormed, _probs); // leaves xNormed quantized in _xq for the experts
        Ops.TopK(_probs, _experts);
        float sum = 0;
        for (int j = 0; j < _experts.Length; j++)
        {
            _weights[j] = _probs[_experts[j]];
            sum += _weights[j];
        }

        if (_c.NormalizeTopK)
        {
            for (int j = 0; j < _weights.Length; j++)
            {
                _weights[j] /= sum;
            }
        }

        int k = _experts.Length;
        if (rt.Routing is not null)
        {
            k = rt.Routing.Route(_moeIndex, _probs, _experts, _weights, k, rt.Residency!);
        }

        var observed = new RoutingObservation
        {
            Token = token,
            Layer = _moeIndex,
            Hidden = residual,
            Experts = _experts.AsSpan(0, k),
            Weights = _weights.AsSpan(0, k),
        };
        rt.Observer?.Observe(observed);
        rt.Source.Request(observed);

        // Experts are computed as their weights become ready (cached ones first, then misses as their reads land), so
        // compute overlaps the remaining reads: whatever is ready is computed together, one dispatch per projection.
        // Each result is kept and the weighted sum is taken in routing order afterwards, so the logits are
        // bit-identical to computing them one by one in routing order. A source that never waits (all experts
        // resident) has them all computed in one batch.
        output.Clear();
        double stall = 0;
        var computed = _computed.AsSpan(0, k);
        computed.Clear();
        int hidden = output.Length;
        var experts = _experts.AsSpan(0, k);
        if (2 * k > ComputePool.MaxConcatTerms)
        {
            for (int n = 0; n < k; n++)
            {
                long t0 = Stopwatch.GetTimestamp();
                int j = rt.Source.NextReady(_moeIndex, experts, computed);
                var e = rt.Source.Acquire(_moeIndex, _experts[j]);
                stall += Stopwatch.GetElapsedTime(t0).TotalSeconds;
                try
                {
                    Expert(e.Gate, e.Up, e.Down, _routedOut.AsSpan(j * hidden, hidden));
                }
                finally
                {
                    rt.Source.Release(_moeIndex, _experts[j]);
                }

                computed[j] = true;
            }
        }
        else if (rt.Source.AlwaysReady)
        {
            _ready.AsSpan(0, k).Fill(true);
            ExpertsTogether(rt.Source, k, hidden);
        }
        else
        {
            var ready = _ready.AsSpan(0, k);
            for (int left = k; left > 0;)
            {
                long t0 = Stopwatch.GetTimestamp();
                rt.Source.ReadyExperts(_moeIndex, experts, computed, ready);
                stall += Stopwatch.GetElapsedTime(t0).TotalSeconds;
                left -= ExpertsTogether(rt.Source, k, hidden);
                for (int j = 0; j < k; j++) computed[j] |= ready[j];
            }
        }

        for (int j = 0; j < k; j++)
        {
            TensorPrimitives.MultiplyAdd(_routedOut.AsSpan(j * hidden, hidden), _weights[j], output, output);
        }

        if (_sharedGate is { } sg)
        {
            float scale = 1f;
            if (_sharedGateInput is { } gi)
            {
                _pool.MatVec(gi, _xq, _sharedScalar);
                scale = Ops.Sigmoid(_sharedScalar[0]);
            }

            Expert(sg, _sharedUp!.Value, _sharedDown!.Value, _expertOut);
            TensorPrimitives.MultiplyAdd(_expertOut, scale, output, output);
        }

        return stall;
    }

    /// <summary>
    /// The routed experts marked in _ready (of the first <paramref name="k"/>), each into its slot of _routedOut: every
    /// gate and up in one dispatch, then every down in one (2 hand-offs between the threads instead of 2 per expert).
    /// Row for row the same kernels as <see cref="Expert"/>, so the outputs are bit-identical. Returns how many.
    /// </summary>
    private int ExpertsTogether(IExpertSource source, int k, int hidden)
    {
        int n = 0, ff = _c.ExpertFeedForward;
        bool inPlace = true; // batch position b is routing slot b: the downs can write straight into _routedOut
        try
        {
            for (int j = 0; j < k; j++)
            {
                if (!_ready[j]) continue;
                var e = source.Acquire(_moeIndex, _experts[j]);
                _batch[n] = j;
                _gateUps[2 * n] = e.Gate;
                _gateUps[(2 * n) + 1] = e.Up;
                _downs[n] = e.Down;
                inPlace &= j == n;
                n++;
                if (e.Gate.Rows != ff) throw new InvalidOperationException($"expert width {e.Gate.Rows}, model config says {ff}");
            }

            _pool.MatVecConcat(_gateUps.AsSpan(0, 2 * n), _gateUpInputs.AsSpan(0, 2 * n), _gatesUps.AsSpan(0, 2 * n * ff));
            for (int b = 0; b < n; b++)
            {
                var g = _gatesUps.AsSpan(2 * b * ff, ff);
                VectorOps.SwiGlu(g, _gatesUps.AsSpan(((2 * b) + 1) * ff, ff));
                _downInputs[b].Set(g);
            }

            var downs = inPlace ? _routedOut.AsSpan(0, n * hidden) : _batchOut.AsSpan(0, n * hidden);
            _pool.MatVecConcat(_downs.AsSpan(0, n), _downInputs.AsSpan(0, n), downs);
            if (!inPlace)
            {
                for (int b = 0; b < n; b++) downs.Slice(b * hidden, hidden).CopyTo(_routedOut.AsSpan(_batch[b] * hidden, hidden));
            }
        }
        finally
        {
            for (int b = 0; b < n; b++) source.Release(_moeIndex, _experts[_batch[b]]);
        }

        return n;
    }

    /// <summary>down(silu(gate·x) ⊙ up·x) for the quantized input in _xq, into <paramref name="result"/> (unweighted).</summary>
    private void Expert(in WeightMatrix gate, in WeightMatrix up, in WeightMatrix down, Span<float> result)
    {
        int ff = gate.Rows;
        var g = _gate.AsSpan(0, ff);
        _pool.MatVec2(gate, up, _xq, g, _up.AsSpan(0, ff));
        VectorOps.SwiGlu(g, _up.AsSpan(0, ff));
        _hq.Set(g);
        _pool.MatVec(down, _hq, result);
    }
}

/// <summary>What the MoE blocks use at run time: where experts come from and which policies change routing.</summary>
public readonly record struct MoeRuntime(IExpertSource Source, IRoutingPolicy? Routing, IExpertResidency? Residency, IRoutingObserver? Observer);
