using System.Globalization;
using MoeLab.Harness.Experiments;
using MoeLab.Harness.Results;
using Spectre.Console;

namespace MoeLab.Harness.Runs;

/// <summary>What the run loop tells the user while it works: cells done/total, current tokens/s, ETA.</summary>
public interface IRunProgress
{
    /// <summary>Runs the whole loop inside whatever display this progress needs (Spectre's live region, or nothing).</summary>
    T Wrap<T>(int totalCells, Func<T> body);

    void Skipped(ExperimentCell cell);

    void CellStarted(ExperimentCell cell, int number, int total);

    /// <summary>A token arrived; <paramref name="tokensPerSecond"/> is the rate over the last few tokens.</summary>
    void Token(double tokensPerSecond);

    void CellFinished(ExperimentCell cell, CellSummary? summary, string? error);

    void Note(string message);

    /// <summary>Spectre's live display on a terminal; plain lines when output is redirected (CI logs, files).</summary>
    public static IRunProgress ForConsole() => Console.IsOutputRedirected ? new PlainProgress(Console.Out) : new LiveProgress();
}

/// <summary>Estimates the time left from the cells that actually ran (skipped ones cost nothing).</summary>
internal sealed class Eta
{
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private int _ran;

    public int Remaining { get; set; }

    public void Ran()
    {
        _ran++;
        Remaining--;
    }

    public string Text =>
        _ran == 0 ? "ETA —" : "ETA " + TimeSpan.FromSeconds(_clock.Elapsed.TotalSeconds / _ran * Remaining).ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture);
}

public sealed class PlainProgress(TextWriter output) : IRunProgress
{
    private readonly Eta _eta = new();
    private int _done;
    private int _total;

    public T Wrap<T>(int totalCells, Func<T> body)
    {
        _total = totalCells;
        _eta.Remaining = totalCells;
        return body();
    }

    public void Skipped(ExperimentCell cell)
    {
        _done++;
        _eta.Remaining--;
        output.WriteLine($"[{_done}/{_total}] {cell.Name} ({cell.Id}): already finished, skipped");
    }

    public void CellStarted(ExperimentCell cell, int number, int total) => output.WriteLine($"[{_done + 1}/{_total}] {cell.Name} ({cell.Id}): running");

    public void Token(double tokensPerSecond)
    {
    }

    public void CellFinished(ExperimentCell cell, CellSummary? summary, string? error)
    {
        _done++;
        _eta.Ran();
        output.WriteLine(error is not null
            ? $"[{_done}/{_total}] {cell.Name}: FAILED: {error}"
            : string.Create(CultureInfo.InvariantCulture, $"[{_done}/{_total}] {cell.Name}: {summary!.TpsMean:0.###} tokens/s, hit rate {summary.HitRate:0.###}; {_eta.Text}"));
    }

    public void Note(string message) => output.WriteLine(message);
}

public sealed class LiveProgress(IAnsiConsole? console = null) : IRunProgress
{
    private readonly IAnsiConsole _console = console ?? AnsiConsole.Console;
    private readonly Eta _eta = new();
    private ProgressTask? _task;
    private string _cell = "";
    private long _lastRefresh;
    private int _done;
    private int _total;

    public T Wrap<T>(int totalCells, Func<T> body)
    {
        _total = totalCells;
        _eta.Remaining = totalCells;
        T result = default!;
        _console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                _task = ctx.AddTask("starting", maxValue: Math.Max(1, totalCells));
                result = body();
                _task.Description = Markup.Escape($"{_done}/{_total} cells done");
                _task.StopTask();
            });
        return result;
    }

    public void Skipped(ExperimentCell cell)
    {
        _done++;
        _eta.Remaining--;
        _task?.Increment(1);
    }

    public void CellStarted(ExperimentCell cell, int number, int total)
    {
        _cell = cell.Name;
        Describe("…");
    }

    public void Token(double tokensPerSecond)
    {
        // Redrawing on every token would cost more than a tiny model's token; a few times a second is enough.
        long now = Environment.TickCount64;
        if (now - _lastRefresh < 250) return;
        _lastRefresh = now;
        Describe(tokensPerSecond.ToString("0.##", CultureInfo.InvariantCulture) + " tok/s");
    }

    public void CellFinished(ExperimentCell cell, CellSummary? summary, string? error)
    {
        _done++;
        _eta.Ran();
        _task?.Increment(1);
        _console.MarkupLine(error is not null
            ? $"[red]✗[/] {Markup.Escape(cell.Name)}: {Markup.Escape(error)}"
            : $"[green]✓[/] {Markup.Escape(cell.Name)}: {Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{summary!.TpsMean:0.###} tokens/s, hit rate {summary.HitRate:0.###}"))}");
    }

    public void Note(string message) => _console.MarkupLine(Markup.Escape(message));

    /// <summary>The live line as last drawn: cells done/total, the running cell, current tokens/s, ETA.</summary>
    internal string Status { get; private set; } = "";

    private void Describe(string rate)
    {
        Status = $"[{_done}/{_total}] {_cell}: {rate}, {_eta.Text}";
        if (_task is not null) _task.Description = Markup.Escape(Status);
    }
}
