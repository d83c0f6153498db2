using System.Globalization;

namespace MoeLab.Harness.Cli;

/// <summary>
/// Parsed <c>--name value</c>, <c>--name=value</c> and <c>--flag</c> options plus positional arguments.
/// Every option a command reads is marked used; <see cref="EnsureAllUsed"/> rejects the rest, so typos fail loudly.
/// </summary>
public sealed class CliArgs
{
    private readonly Dictionary<string, List<string?>> _options = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public CliArgs(IEnumerable<string> args)
    {
        var list = args.ToList();
        for (int i = 0; i < list.Count; i++)
        {
            string a = list[i];
            if (a == "--")
            {
                Positional.AddRange(list.Skip(i + 1));
                break;
            }

            // "-n 64" (llama.cpp's spelling) is accepted as "--n 64": single letters only, so "-1" stays a value.
            bool shortOption = a.Length == 2 && a[0] == '-' && char.IsAsciiLetter(a[1]);
            if ((a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2) || shortOption)
            {
                string name = shortOption ? a[1..] : a[2..];
                string? value = null;
                int eq = name.IndexOf('=');
                if (eq >= 0)
                {
                    value = name[(eq + 1)..];
                    name = name[..eq];
                }
                else if (i + 1 < list.Count && !list[i + 1].StartsWith("--", StringComparison.Ordinal))
                {
                    value = list[++i];
                }

                if (!_options.TryGetValue(name, out var values)) _options[name] = values = [];
                values.Add(value);
            }
            else
            {
                Positional.Add(a);
            }
        }
    }

    public List<string> Positional { get; } = [];

    /// <summary>A flag: present without a value (or with true/false).</summary>
    public bool Flag(string name)
    {
        _used.Add(name);
        if (!_options.TryGetValue(name, out var values)) return false;
        string? v = values[^1];
        if (v is null) return true;
        // A flag followed by a positional: give the positional back.
        if (v is "true" or "false") return v == "true";
        Positional.Add(v);
        values[^1] = null;
        return true;
    }

    public string? Option(string name)
    {
        _used.Add(name);
        if (!_options.TryGetValue(name, out var values)) return null;
        return values[^1] ?? throw new CliUsageException($"--{name} needs a value");
    }

    public IReadOnlyList<string> Options(string name)
    {
        _used.Add(name);
        if (!_options.TryGetValue(name, out var values)) return [];
        return values.Select(v => v ?? throw new CliUsageException($"--{name} needs a value")).ToList();
    }

    public string Required(string name) => Option(name) ?? throw new CliUsageException($"--{name} is required");

    public int Int(string name, int fallback)
    {
        string? v = Option(name);
        if (v is null) return fallback;
        return int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i)
            ? i
            : throw new CliUsageException($"--{name}: '{v}' is not a whole number");
    }

    public double Double(string name, double fallback)
    {
        string? v = Option(name);
        if (v is null) return fallback;
        return double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)
            ? d
            : throw new CliUsageException($"--{name}: '{v}' is not a number");
    }

    /// <summary>Fails on any option no code asked for (a typo, or an option of another command).</summary>
    public void EnsureAllUsed()
    {
        foreach (string name in _options.Keys)
        {
            if (!_used.Contains(name)) throw new CliUsageException($"unknown option --{name}");
        }
    }

    /// <summary>For commands that take only options: a stray word is an error, not silently ignored.</summary>
    public void EnsureNoPositional()
    {
        if (Positional.Count > 0) throw new CliUsageException($"unexpected argument '{Positional[0]}'");
    }
}
