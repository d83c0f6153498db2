using System.Diagnostics;
using MoeLab.Engine.Experts;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Kernels;
using MoeLab.Engine.Policies;

namespace MoeLab.Engine.Model;

/// <summary>How to load a model: threads, context, and where its routed experts come from.</summary>
public sealed record ModelOptions
{
    /// <summary>Compute threads (0 = all cores).</summary>
    public int Threads { get; init; }

    /// <summary>KV-cache positions to allocate (0 = min(model context, 4096)).</summary>
    public int MaxContext { get; init; }

    /// <summary>
    /// Numerics of the attention KV cache. <see cref="KvCacheType.F32"/> (default) keeps K and V exact;
    /// <see cref="KvCacheType.F16"/> reproduces llama.cpp's default F16 cache (see <see cref="KvCacheType"/>).
    /// </summary>
    public KvCacheType KvCache { get; init; } = KvCacheType.F32;

    /// <summary>Builds the expert source from the layout; default: every expert resident in RAM.</summary>
    public Func<ExpertLayout, IExpertSource>? ExpertSource { get; init; }

    public IRoutingPolicy? Routing { get; init; }

    public IRoutingObserver? Observer { get; init; }

    /// <summary>
    /// Whether <see cref="MoeModel.ForwardPrompt"/> evaluates chunks at once (default) or token by token. Token by
    /// token keeps the expert source's request sequence that of decoding, which strategies replaying a recorded
    /// future request by request (oracle prefetch, belady) need.
    /// </summary>
    public bool BatchedPrompt { get; init; } = true;

    /// <summary>
    /// Whether resident matrices (and, with the default all-resident source, the experts) are repacked at load into
    /// the 8-row interleaved layout where this CPU has a kernel for it (Q4_0 on AVX2). Streamed experts always keep
    /// the file layout. Off: every matrix is used as the file lays it out.
    /// </summary>
    public bool InterleaveWeights { get; init; } = true;

    /// <summary>
    /// Whether resident weights and the all-resident expert arena are advised into transparent huge pages on Linux
    /// (<see cref="WeightMemory"/>). Off: ordinary pages, for comparison.
    /// </summary>
    public bool HugePages { get; init; } = true;
}

/// <summary>
/// A Mixture-of-Experts causal LM loaded from GGUF: resident dense weights, routed experts through an
/// <see cref="IExpertSource"/>, and one decode step per call to <see cref="Forward"/>. Reads top to bottom as the
/// model's math; all buffers are allocated at load.
/// </summary>
public sealed partial class MoeModel : IRouterProbe, IExpertResidency, IDisposable
{
    private readonly ResidentTensors _weights;
    private readonly ComputePool _pool;
    private readonly float[][] _attnNorm, _ffnNorm;
    private readonly IAttentionLayer[] _attention;
    private readonly MoeBlock?[] _moe;
    private readonly int[] _moeIndexOfLayer;
    private readonly WeightMatrix _tokenEmbedding, _output;
    private readonly float[] _outputNorm;
    private readonly float[] _x, _xb, _xb2, _logits, _probeNormed;
    private readonly QuantizedVector _finalQ;
    private readonly IExpertSource _source;
    private readonly MoeRuntime _runtime;
    private readonly bool _ownsSource;

    private MoeModel(GgufFile file, ModelConfig config, ModelOptions options)
    {
        File = file;
        Config = config;
        MaxContext = options.MaxContext > 0 ? options.MaxContext : Math.Min(config.ContextLength, 4096);
        _weights = new ResidentTensors(file, t => !ExpertTensors.IsRoutedExpert(t) && IsMainStack(t.Name, config.Layers), options.InterleaveWeights, options.HugePages);
        try
        {
            Experts = ExpertTensors.Layout(file, config);
            _pool = new ComputePool(options.Threads > 0 ? options.Threads : Environment.ProcessorCount);
            var c = config;
            // Tied output (no output.weight): llama.cpp then multiplies by token_embd, so it needs a matvec kernel too.
            bool tied = !_weights.Has("output.weight");
            _tokenEmbedding = _weights.Matrix("token_embd.weight", c.Vocab, c.Hidden, rowsOnly: !tied, rowLookups: true);
            _output = tied ? _tokenEmbedding : _weights.Matrix("output.weight", c.Vocab, c.Hidden);
            _outputNorm = _weights.Vector("output_norm.weight", c.Hidden);
            _attnNorm = new float[c.Layers][];
            _ffnNorm = new float[c.Layers][];
            _attention = new IAttentionLayer[c.Layers];
            _moe = new MoeBlock?[c.Layers];
            _moeIndexOfLayer = new int[c.Layers];
            bool neox = c.Architecture is "qwen3moe" or "qwen35moe" or "qwen2moe";
            var rope = new RopeTable(c.RopeDimensions, c.RopeBase, MaxContext, c.RopeScaling);
            for (int l = 0; l < c.Layers; l++)
            {
                _attnNorm[l] = _weights.Vector($"blk.{l}.attn_norm.weight", c.Hidden);
                _ffnNorm[l] = _weights.Vector(_weights.Has($"blk.{l}.ffn_norm.weight") ? $"blk.{l}.ffn_norm.weight" : $"blk.{l}.post_attention_norm.weight", c.Hidden);
                _attention[l] = c.IsRecurrent(l)
                    ? new GatedDeltaNet(c, _weights, l, _pool)
                    : new FullAttention(c, _weights, l, MaxContext, _pool, rope, neox, options.KvCache);
                int moeIndex = IndexOf(Experts.MoeLayers, l);
                if (moeIndex < 0)
                {
                    throw new GgufFormatException($"{file.Path}: layer {l} has no routed experts (blk.{l}.ffn_gate_exps.weight); dense layers are not supported for {c.Architecture}");
                }

                _moeIndexOfLayer[l] = moeIndex;
                _moe[l] = new MoeBlock(c, _weights, l, moeIndex, _pool);
            }

            _x = new float[c.Hidden];
            _xb = new float[c.Hidden];
            _xb2 = new float[c.Hidden];
            _probeNormed = new float[c.Hidden];
            _logits = new float[c.Vocab];
            _finalQ = new QuantizedVector(c.Hidden);
            _ownsSource = options.ExpertSource is null;
            _source = options.ExpertSource?.Invoke(Experts) ?? new ResidentExpertSource(Experts, options.InterleaveWeights, options.HugePages);
            if (!_source.AlwaysReady) _pool.SpinIterations = ComputePool.StreamingSpinIterations; // leave the CPUs to the readers in stalls
            _runtime = new MoeRuntime(_source, options.Routing, this, options.Observer);
            _batchedPrompt = options.BatchedPrompt;
        }
        catch
        {
            _weights.Dispose();
            throw;
        }
    }

    public static MoeModel Load(string path, ModelOptions? options = null) => Load(GgufFile.Open(path), options);

    public static MoeModel Load(GgufFile file, ModelOptions? options = null)
    {
        string path = file.Path;
        var config = ModelConfig.FromGguf(file);
        if (!IsSupported(config.Architecture))
        {
            throw new NotSupportedException($"{path}: architecture '{config.Architecture}' is not supported yet (qwen3moe, qwen35moe and llama/Mixtral are)");
        }

        return new MoeModel(file, config, options ?? new ModelOptions());
    }

    /// <summary>GGUF architectures this engine runs.</summary>
    public static bool IsSupported(string architecture) => architecture is "qwen3moe" or "qwen35moe" or "llama";

    public GgufFile File { get; }

    public ModelConfig Config { get; }

    public ExpertLayout Experts { get; }

    public IExpertSource ExpertSource => _source;

    /// <summary>The compute threads (benchmarks set its chunking to compare against an older rule).</summary>
    internal ComputePool Pool => _pool;

    public int MaxContext { get; }

    /// <summary>Bytes of the resident (non-expert) weights.</summary>
    public long ResidentBytes => _weights.Bytes;

    /// <summary>Bytes of the resident (non-expert) weights repacked into the 8-row interleaved layout.</summary>
    public long InterleavedResidentBytes => _weights.InterleavedBytes;

    /// <summary>Position of the next token.</summary>
    public int Position { get; private set; }

    /// <summary>Seconds spent waiting for experts during the last <see cref="Forward"/>.</summary>
    public double LastStallSeconds { get; private set; }

    /// <summary>Wall seconds of the last <see cref="Forward"/>.</summary>
    public double LastWallSeconds { get; private set; }

    /// <summary>
    /// Seconds of the last <see cref="Forward"/> spent in the token mixers (norm + attention + residual, all layers):
    /// with the output head, the compute during which no expert read can be in flight unless a prefetcher guessed one.
    /// </summary>
    public double LastAttentionSeconds { get; private set; }

    /// <summary>Seconds of the last <see cref="Forward"/> spent in the output head (final norm + vocabulary matvec).</summary>
    public double LastHeadSeconds { get; private set; }

    /// <summary>
    /// When set, each <see cref="Forward"/> adds its consecutive layers' router inputs to it (a diagnostic: one
    /// cosine and one copy of a hidden-sized vector per layer). Null (default): nothing is measured.
    /// </summary>
    public Telemetry.RouterInputSimilarity? RouterInputs { get; set; }

    public int Layers => Experts.Layers;

    public int ExpertsPerLayer => Config.Experts;

    /// <summary>Starts a new sequence: position 0, and every layer's KV cache or recurrent state forgotten.</summary>
    public void Reset()
    {
        Position = 0;
        foreach (var layer in _attention)
        {
            layer.Reset();
        }
    }

    /// <summary>Which token mixer layer <paramref name="layer"/> uses ("full" or "linear" attention).</summary>
    public string LayerKind(int layer) => _attention[layer] is GatedDeltaNet ? "linear" : "full";

    /// <summary>Runs one token at the next position and returns the logits over the vocabulary (valid until the next call).</summary>
    public ReadOnlySpan<float> Forward(int token)
    {
        if ((uint)token >= (uint)Config.Vocab)
        {
            throw new ArgumentOutOfRangeException(nameof(token), token, $"token id outside the vocabulary of {Config.Vocab}");
        }

        long start = Stopwatch.GetTimestamp();
        double stall = 0;
        int pos = Position;
        var c = Config;
        _source.BeginToken(pos);
        Dequantizer.DequantizeRow(_tokenEmbedding.Type, _tokenEmbedding.Row(token), _x);
        var routerInputs = RouterInputs;
        routerInputs?.BeginToken();
        long attention = 0;
        for (int l = 0; l < c.Layers; l++)
        {
            long t0 = Stopwatch.GetTimestamp();
            VectorOps.RmsNorm(_x, _attnNorm[l], c.NormEpsilon, _xb);
            _attention[l].Forward(_xb, pos, _xb2);
            Add(_x, _xb2);
            attention += Stopwatch.GetTimestamp() - t0;

            VectorOps.RmsNorm(_x, _ffnNorm[l], c.NormEpsilon, _xb);
            routerInputs?.Add(_xb);
            stall += _moe[l]!.Forward(_xb, _x, pos, _xb2, _runtime);
            Add(_x, _xb2);
        }

        long head = Stopwatch.GetTimestamp();
        VectorOps.RmsNorm(_x, _outputNorm, c.NormEpsilon, _xb);
        _finalQ.Set(_xb);
        _pool.MatVec(_output, _finalQ, _logits);
        LastHeadSeconds = Stopwatch.GetElapsedTime(head).TotalSeconds;
        LastAttentionSeconds = (double)attention / Stopwatch.Frequency;
        Position = pos + 1;
        LastStallSeconds = stall;
        LastWallSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return _logits;
    }

    /// <summary>Tensors of the main pass: not the MTP blocks appended after it, not a vision tower (never run here).</summary>
    private static bool IsMainStack(string name, int layers)
    {
        if (name.StartsWith("v.", StringComparison.Ordinal) || name.StartsWith("mm.", StringComparison.Ordinal))
        {
            return false;
        }

        if (!name.StartsWith("blk.", StringComparison.Ordinal))
        {
            return true;
        }

        int dot = name.IndexOf('.', 4);
        return dot < 0 || !int.TryParse(name.AsSpan(4, dot - 4), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int block) || block < layers;
    }

    private static int IndexOf(IReadOnlyList<int> list, int value)
    {
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] == value)
            {
                return i;
            }
        }

        return -1;
    }

    private static void Add(Span<float> x, ReadOnlySpan<float> y) => System.Numerics.Tensors.TensorPrimitives.Add(x, y, x);

    /// <summary>Next-gate probing: layer <paramref name="layer"/>'s FFN norm and router applied to a residual state.</summary>
    public void RouterProbabilities(int layer, ReadOnlySpan<float> hidden, Span<float> probabilities)
    {
        int l = Experts.MoeLayers[layer];
        VectorOps.RmsNorm(hidden, _ffnNorm[l], Config.NormEpsilon, _probeNormed);
        _moe[l]!.RouterProbabilities(_probeNormed, probabilities);
    }

    public bool IsResident(ExpertKey key) => _source is IExpertResidency r && r.IsResident(key);

    public void Dispose()
    {
        if (_ownsSource && _source is IDisposable d)
        {
            d.Dispose();
        }

        _pool.Dispose();
        _weights.Dispose();
    }
}
