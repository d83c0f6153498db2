using MoeLab.DeviceAgent.Api;
using MoeLab.Harness.Runs;

namespace MoeLab.Harness.Tests.Runs;

/// <summary>
/// TEST DOUBLE — not a measurement. Produces seeded pseudo-random token rows so the run loop, result files,
/// statistics and reports can be tested without an engine. Hit rate grows with the budget so curves have a shape.
/// </summary>
internal sealed class ScriptedTarget(string name = "test-double") : ICellTarget
{
    public List<string> Ran { get; } = [];

    /// <summary>Cell ids whose run throws (a target failure).</summary>
    public HashSet<string> FailOn { get; } = [];

    /// <summary>Cancels this source after that many cells ran (an interrupted run).</summary>
    public (int After, CancellationTokenSource Source)? CancelAfter { get; set; }

    public string Name => name;

    public string? Preflight(RunCell cell) => null;

    public CellResult Run(RunCell cell, Action<TokenEvent> onToken, CancellationToken cancel)
    {
        Ran.Add(cell.CellId);
        if (FailOn.Contains(cell.CellId)) throw new IOException($"scripted failure of {cell.CellId}");
        var rng = new Random(HashCode.Combine(cell.CellId.Length, cell.Seed, (int)(cell.BudgetBytes ?? 0)));
        double hitRate = cell.BudgetBytes is { } b ? Math.Min(0.95, b / (double)(8 << 20)) : 1.0;
        var events = new List<TokenEvent>();
        // 8 demands per token over 4 layers, 2 each: demand k belongs to layer k / 2.
        long[] layerHits = new long[4], layerMisses = new long[4];
        for (int rep = 0; rep < cell.Repetitions; rep++)
        {
            for (int i = 0; i < cell.GenerateTokens; i++)
            {
                int hits = 0, misses = 0;
                for (int k = 0; k < 8; k++)
                {
                    if (rng.NextDouble() < hitRate)
                    {
                        hits++;
                        layerHits[k / 2]++;
                    }
                    else
                    {
                        misses++;
                        layerMisses[k / 2]++;
                    }
                }

                double io = misses * (0.5 + rng.NextDouble());
                double compute = 2 + rng.NextDouble();
                var e = new TokenEvent(rep, i, rng.Next(320), io + compute, hits, misses, 0, misses * 110_592L, io, compute, io);
                events.Add(e);
                onToken(e);
            }
        }

        if (CancelAfter is { } c && Ran.Count >= c.After) c.Source.Cancel();
        double seconds = events.Sum(e => e.WallMs) / 1000;
        return new CellResult
        {
            CellId = cell.CellId,
            IoMode = cell.IoMode,
            BudgetBytes = cell.BudgetBytes,
            Tokens = events.Count,
            Seconds = seconds,
            TokensPerSecond = events.Count / seconds,
            ExpertHits = events.Sum(e => e.Hits),
            ExpertMisses = events.Sum(e => e.Misses),
            TokenEvents = events.ToArray(),
            ExpertsByLayer = LayerExpertCounts.Of(layerHits, layerMisses, new long[4]),
            PeakRssBytes = 100 << 20,
            Source = "test-double",
        };
    }
}
