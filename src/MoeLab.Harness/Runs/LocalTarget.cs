using System.Globalization;
using MoeLab.DeviceAgent.Api;
using MoeLab.DeviceAgent.Runs;
using MoeLab.Engine.Gguf;
using MoeLab.Engine.Model;
using MoeLab.Engine.Telemetry;
using MoeLab.Harness.Experiments;
using MoeLab.Harness.Traces;

namespace MoeLab.Harness.Runs;

/// <summary>
/// Runs cells on this machine with the real engine (the same <see cref="EngineCellRunner"/> device agents use).
/// A synthesized model (<c>synth:PRESET:layers=N,quant=Q</c>) is written once into the model cache directory and
/// reused by later cells and runs.
/// </summary>
public sealed class LocalTarget(string modelCacheDirectory = "models") : ICellTarget
{
    public string Name => "local";

    public string ModelCacheDirectory { get; } = modelCacheDirectory;

    public string? Preflight(RunCell cell)
    {
        var model = ModelRef.Parse(cell.Model);
        if (model.IsSynth)
        {
            return ModelPreset.Find(model.Preset!) is null ? $"unknown synth preset '{model.Preset}'" : null;
        }

        return EngineCellRunner.Preflight(cell, model.Path!, AvailableMemory());
    }

    public CellResult Run(RunCell cell, Action<TokenEvent> onToken, CancellationToken cancel)
    {
        string path = ResolveModel(cell.Model);
        string? problem = EngineCellRunner.Preflight(cell, path, AvailableMemory());
        if (problem is not null)
        {
            throw new InvalidOperationException($"cell {cell.CellId}: {problem}");
        }

        RoutingTraceRecorder? recorder = null;
        if (cell.RecordTrace)
        {
            var f = GgufFile.Open(path);
            var c = ModelConfig.FromGguf(f);
            recorder = new RoutingTraceRecorder(ExpertTensors.Layout(f, c).Layers, c.Experts);
            recorder.Header["model"] = Path.GetFileName(path);
            recorder.Header["cell"] = cell.CellId;
            recorder.Header["note"] = "every forward pass in order: per prompt and repetition, warm-up tokens, prompt tokens, generated tokens";
        }

        // The experiment's routing trace of this model is the profile that static-hot, layered-lru, per-expert-bits
        // and transition:source=profile learn from (a sim: target replays the same trace).
        var profile = cell.Trace is null ? null : TraceFiles.Load(cell.Trace, cell.TraceFormat);
        var result = EngineCellRunner.Run(cell, path, onToken, recorder, cancel, profile);
        if (recorder is not null)
        {
            using var ms = new MemoryStream();
            MoelabTraceFormat.Write(recorder.Build(), ms);
            result = result with { TraceBase64 = Convert.ToBase64String(ms.ToArray()) };
        }

        return result;
    }

    /// <summary>A model path as is, or the cached synthesized file for a synth reference (written on first use).</summary>
    public string ResolveModel(string model)
    {
        var m = ModelRef.Parse(model);
        if (!m.IsSynth)
        {
            return m.Path!;
        }

        var preset = ModelPreset.Find(m.Preset!) ?? throw new ArgumentException($"unknown synth preset '{m.Preset}'");
        var quant = m.Quant is null ? GgmlType.Q4_0 : Enum.Parse<GgmlType>(m.Quant, ignoreCase: true);
        string name = string.Create(CultureInfo.InvariantCulture, $"{preset.Name}-{m.Layers ?? preset.Layers}L-{quant}.gguf");
        string path = Path.Combine(ModelCacheDirectory, name);
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(ModelCacheDirectory);
            Console.Error.WriteLine($"synthesizing {name} into {ModelCacheDirectory}/ (first use)");
            ModelSynthesizer.Write(new SynthOptions(preset, m.Layers, quant), path);
        }

        return path;
    }

    private static long AvailableMemory() => EngineCellRunner.AvailableMemory();
}
