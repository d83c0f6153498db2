using System.Text.Json;
using MoeLab.DeviceAgent.Api;
using MoeLab.Harness.Coordinator;

namespace MoeLab.DeviceAgent.Tests.Api;

public sealed class CellQueueTests
{
    private sealed class ManualClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 11, 24, 0, 0, 0, TimeSpan.Zero);

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static JsonElement Cell => JsonDocument.Parse("{}").RootElement;

    [Fact]
    public void ASilentAgentsLeaseIsRequeuedThenFailedAfterTheLastAttempt()
    {
        var clock = new ManualClock();
        var queue = new CellQueue(TimeSpan.FromSeconds(10), maxAttempts: 2, clock);
        queue.Enqueue("a", Cell);
        queue.Enqueue("b", Cell);

        var first = queue.TryLease("agent-1")!;
        Assert.Equal(("a", 1), (first.CellId, first.Attempt));
        clock.Now += TimeSpan.FromSeconds(11);
        Assert.Equal(["a"], queue.ReapExpired());
        Assert.Equal(CellState.Pending, queue.Find("a")!.State);

        var second = queue.TryLease("agent-2")!;
        Assert.Equal(("a", 2), (second.CellId, second.Attempt));
        // The first agent comes back from the dead: its stale attempt is refused.
        Assert.Throws<LeaseConflictException>(() => queue.ApplyEvents("agent-1", "a", new EventBatch(1, 0, [], null, [])));
        clock.Now += TimeSpan.FromSeconds(11);
        queue.ReapExpired();
        var a = queue.Find("a")!;
        Assert.Equal(CellState.Failed, a.State);
        Assert.Contains("2 attempts", a.Error);
        Assert.Equal(2, a.History.Count);
        Assert.Equal("b", queue.TryLease("agent-2")!.CellId);
    }

    [Fact]
    public void ASubmittedAgainFailedCellGetsFreshAttemptsWhileOthersAreLeftAlone()
    {
        var clock = new ManualClock();
        var queue = new CellQueue(TimeSpan.FromSeconds(10), maxAttempts: 1, clock);
        Assert.Equal(SubmitOutcome.Queued, queue.Submit("a", Cell));
        Assert.Equal(SubmitOutcome.Queued, queue.Submit("b", Cell));
        Assert.Equal(SubmitOutcome.AlreadyPresent, queue.Submit("a", Cell)); // pending: untouched
        queue.TryLease("agent-1");
        clock.Now += TimeSpan.FromSeconds(11);
        queue.ReapExpired();
        Assert.Equal(CellState.Failed, queue.Find("a")!.State);

        // A resumed experiment submits it again: one more lease, counted afresh against maxAttempts.
        Assert.Equal(SubmitOutcome.Requeued, queue.Submit("a", Cell));
        var again = queue.TryLease("agent-2")!;
        Assert.Equal(("a", 2), (again.CellId, again.Attempt));
        Assert.Throws<LeaseConflictException>(() => queue.ApplyEvents("agent-1", "a", new EventBatch(1, 0, [], null, [])));
        queue.Complete("agent-2", "a", new CompletionRequest(2, true, null, 0, null));
        var status = queue.Status("a")!;
        Assert.Equal(CellState.Succeeded, status.State);
        Assert.Equal(2, status.History.Length); // lost lease, then "submitted again"
        Assert.Equal(SubmitOutcome.AlreadyPresent, queue.Submit("a", Cell)); // finished: kept as it is
        Assert.Equal(CellState.Succeeded, queue.Find("a")!.State);
    }

    [Fact]
    public void HeartbeatsKeepALeaseAlive()
    {
        var clock = new ManualClock();
        var queue = new CellQueue(TimeSpan.FromSeconds(10), clock: clock);
        queue.Enqueue("a", Cell);
        var lease = queue.TryLease("agent-1")!;
        for (int i = 0; i < 5; i++)
        {
            clock.Now += TimeSpan.FromSeconds(8);
            queue.Heartbeat("agent-1", "a", lease.Attempt);
            Assert.Empty(queue.ReapExpired());
        }
    }

    [Fact]
    public void FinishedCellsAreNeverLeasedAgainAndBatchesMustArriveInOrder()
    {
        var queue = new CellQueue(TimeSpan.FromSeconds(10));
        queue.Enqueue("a", Cell);
        var lease = queue.TryLease("x")!;
        Assert.Throws<LeaseConflictException>(() => queue.ApplyEvents("x", "a", new EventBatch(1, 1, [], null, [])));
        queue.ApplyEvents("x", "a", new EventBatch(1, 0, [], null, []));
        Assert.Throws<LeaseConflictException>(() => queue.Complete("x", "a", new CompletionRequest(lease.Attempt, true, null, 5, null)));
        queue.Complete("x", "a", new CompletionRequest(lease.Attempt, true, null, 1, null));
        Assert.Null(queue.TryLease("y"));
        Assert.True(queue.WaitAll(TimeSpan.Zero));
    }
}
