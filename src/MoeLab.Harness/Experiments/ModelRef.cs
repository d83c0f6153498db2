using System.Globalization;

namespace MoeLab.Harness.Experiments;

/// <summary>
/// The model of an experiment: a GGUF path, or a synthesized model built from a preset on first use. It travels in
/// <c>RunCell.Model</c> as text: a path, or <c>synth:PRESET[:layers=N,quant=Q]</c>, which targets parse back with
/// <see cref="Parse"/>.
/// </summary>
public sealed record ModelRef(string? Path, string? Preset, int? Layers, string? Quant)
{
    public const string SynthPrefix = "synth:";

    public bool IsSynth => Preset is not null;

    public static ModelRef OfPath(string path) => new(path, null, null, null);

    public static ModelRef Synth(string preset, int? layers, string? quant) => new(null, preset, layers, quant);

    public static ModelRef Parse(string text)
    {
        if (!text.StartsWith(SynthPrefix, StringComparison.Ordinal)) return OfPath(text);
        string rest = text[SynthPrefix.Length..];
        int colon = rest.IndexOf(':');
        string preset = colon < 0 ? rest : rest[..colon];
        int? layers = null;
        string? quant = null;
        if (colon >= 0)
        {
            foreach (string pair in rest[(colon + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                int eq = pair.IndexOf('=');
                string key = eq < 0 ? pair : pair[..eq];
                string value = eq < 0 ? "" : pair[(eq + 1)..];
                switch (key)
                {
                    case "layers" when int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int l) && l > 0:
                        layers = l;
                        break;
                    case "quant" when value.Length > 0:
                        quant = value;
                        break;
                    default:
                        throw new FormatException($"model '{text}': '{pair}' is not layers=N or quant=TYPE");
                }
            }
        }

        if (preset.Length == 0) throw new FormatException($"model '{text}': the synth preset name is empty");
        return Synth(preset, layers, quant);
    }

    public override string ToString()
    {
        if (Path is not null) return Path;
        var parts = new List<string>();
        if (Layers is { } l) parts.Add("layers=" + l.ToString(CultureInfo.InvariantCulture));
        if (Quant is not null) parts.Add("quant=" + Quant);
        return SynthPrefix + Preset + (parts.Count > 0 ? ":" + string.Join(",", parts) : "");
    }
}
