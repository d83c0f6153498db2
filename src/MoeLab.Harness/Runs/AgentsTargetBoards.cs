using MoeLab.Harness.Cli;
using MoeLab.Harness.Coordinator;
using MoeLab.Harness.Experiments;

namespace MoeLab.Harness.Runs;

/// <summary>Where the agents target queues cells and reads them back: its own coordinator or a running one.</summary>
internal interface ICellBoard : IDisposable
{
    Uri Address { get; }

    int AgentsRegistered { get; }

    void Submit(IReadOnlyList<SubmittedCell> cells);

    CellStatus Status(string cellId);
}

/// <summary>A coordinator started in this process for the run, stopped with it.</summary>
internal sealed class InProcessBoard : ICellBoard
{
    private readonly CoordinatorServer _server;

    public InProcessBoard(AgentsOptions options, string token)
    {
        var queue = new CellQueue(options.LeaseTimeout);
        _server = new CoordinatorServer(new CoordinatorOptions(ServeCommand.ParseEndPoint(options.Listen), token, options.LeaseTimeout,
            TimeSpan.FromSeconds(Math.Max(1, options.LeaseTimeout.TotalSeconds / 6)), TimeSpan.FromDays(7)), queue);
        _server.StartAsync().GetAwaiter().GetResult();
    }

    public Uri Address => _server.Address;

    public int AgentsRegistered => _server.AgentsRegistered;

    public void Submit(IReadOnlyList<SubmittedCell> cells)
    {
        foreach (var c in cells) _server.Queue.Submit(c.CellId, c.Cell);
    }

    public CellStatus Status(string cellId)
    {
        _server.Queue.ReapExpired();
        return _server.Queue.Status(cellId) ?? throw new KeyNotFoundException($"cell {cellId} was never queued");
    }

    public void Dispose() => _server.DisposeAsync().AsTask().GetAwaiter().GetResult();
}

/// <summary>A coordinator that was already running (<c>moelab serve</c>); it outlives the run and keeps its queue.</summary>
internal sealed class RemoteBoard(CoordinatorQueueClient client) : ICellBoard
{
    public Uri Address => client.Address;

    public int AgentsRegistered => client.List().AgentsRegistered;

    public void Submit(IReadOnlyList<SubmittedCell> cells) => client.Submit(cells);

    public CellStatus Status(string cellId) => client.Status(cellId);

    public void Dispose() => client.Dispose();
}
