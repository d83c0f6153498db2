using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MoeLab.DeviceAgent.Api;

namespace MoeLab.Harness.Coordinator;

/// <summary>Settings of the coordinator.</summary>
public sealed record CoordinatorOptions(
    IPEndPoint Listen,
    string EnrolmentToken,
    TimeSpan LeaseTimeout,
    TimeSpan HeartbeatInterval,
    TimeSpan SessionLifetime,
    int MaxAttempts = 3,
    double RequestsPerSecond = 200,
    bool AllowRemote = false)
{
    /// <summary>Where the coordinator says what happens to cells (leases lost, re-queued); null = silent.</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>
/// The harness-side coordinator (Kestrel): holds the cell queue, registers agents, leases cells by long poll, takes
/// event batches idempotently, and reaps leases whose agent went quiet. Binds to loopback unless told otherwise.
/// Every request but registration needs a live session token (401); bodies are size-bounded (413) and rates
/// bounded per caller (429); malformed JSON is a 400 with the reason, never a crash.
/// </summary>
public sealed class CoordinatorServer : IAsyncDisposable
{
    private readonly CoordinatorOptions _options;
    private readonly ConcurrentDictionary<string, AgentSession> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RateBucket> _rates = new(StringComparer.Ordinal);
    private readonly WebApplication _app;
    private readonly Timer _reaper;
    private int _agentCount;

    public CoordinatorServer(CoordinatorOptions options, CellQueue queue)
    {
        if (!options.AllowRemote && !IPAddress.IsLoopback(options.Listen.Address))
            throw new ArgumentException($"refusing to listen on {options.Listen}: the coordinator binds to loopback unless remote agents are allowed explicitly (--allow-remote)");
        _options = options;
        Queue = queue;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(options.Listen);
            k.Limits.MaxRequestBodySize = AgentApi.MaxBodyBytes;
            k.Limits.MaxRequestHeadersTotalSize = 32 * 1024;
        });
        builder.Services.ConfigureHttpJsonOptions(o => o.SerializerOptions.TypeInfoResolverChain.Insert(0, AgentApiJson.Default));
        _app = builder.Build();
        _app.Use(Guard);
        _app.MapPost(AgentApi.Register, Register);
        _app.MapGet(AgentApi.Work, Work);
        _app.MapPost(AgentApi.Heartbeat, Heartbeat);
        _app.MapPost("/v1/cells/{cellId}/events", Events);
        _app.MapPost("/v1/cells/{cellId}/complete", Complete);
        _app.MapPost(QueueApi.Cells, Submit);
        _app.MapGet(QueueApi.Cells, ListCells);
        _app.MapGet(QueueApi.Cells + "/{cellId}", CellStatusOf);

        // Lost agents are noticed by the clock, not only when someone polls: a quiet lease is reaped within
        // LeaseTimeout + one reaper period (a quarter of the timeout, at most a second).
        var period = TimeSpan.FromMilliseconds(Math.Clamp(options.LeaseTimeout.TotalMilliseconds / 4, 50, 1000));
        _reaper = new Timer(_ => Reap(), null, Timeout.InfiniteTimeSpan, period);
        ReaperPeriod = period;
    }

    /// <summary>How often leases are checked: a lost agent is noticed within LeaseTimeout + ReaperPeriod.</summary>
    public TimeSpan ReaperPeriod { get; }

    public CellQueue Queue { get; }

    /// <summary>The address agents dial, with the real port when 0 was asked for.</summary>
    public Uri Address { get; private set; } = new("http://127.0.0.1/");

    public int AgentsRegistered => _agentCount;

    public async Task StartAsync()
    {
        await _app.StartAsync();
        _reaper.Change(ReaperPeriod, ReaperPeriod);
        var feature = _app.Urls.First();
        Address = new Uri(feature.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
    }

    public async ValueTask DisposeAsync()
    {
        await _reaper.DisposeAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task Guard(HttpContext ctx, RequestDelegate next)
    {
        string caller = ctx.Request.Headers.Authorization.ToString() is { Length: > 0 } auth ? auth : "ip:" + ctx.Connection.RemoteIpAddress;
        if (!_rates.GetOrAdd(caller, _ => new RateBucket(_options.RequestsPerSecond)).TryTake())
        {
            await Fail(ctx, StatusCodes.Status429TooManyRequests, "too many requests; slow down");
            return;
        }

        if (ctx.Request.ContentLength > AgentApi.MaxBodyBytes)
        {
            await Fail(ctx, StatusCodes.Status413PayloadTooLarge, $"request bodies are limited to {AgentApi.MaxBodyBytes} bytes");
            return;
        }

        if (QueueApi.IsQueuePath(ctx.Request.Path))
        {
            if (!IsOperator(ctx))
            {
                await Fail(ctx, StatusCodes.Status401Unauthorized, "the queue needs the enrolment token (Authorization: Bearer <token from the coordinator's token file>)");
                return;
            }
        }
        else if (ctx.Request.Path != AgentApi.Register && Authenticate(ctx) is null)
        {
            await Fail(ctx, StatusCodes.Status401Unauthorized, "a valid session token is required (Authorization: Bearer …); register first");
            return;
        }

        try
        {
            await next(ctx);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await Fail(ctx, StatusCodes.Status413PayloadTooLarge, $"request bodies are limited to {AgentApi.MaxBodyBytes} bytes");
        }
        catch (JsonException e)
        {
            await Fail(ctx, StatusCodes.Status400BadRequest, "malformed JSON: " + e.Message);
        }
        catch (BodyException e)
        {
            await Fail(ctx, StatusCodes.Status400BadRequest, e.Message);
        }
        catch (LeaseConflictException e)
        {
            await Fail(ctx, StatusCodes.Status409Conflict, e.Message);
        }
        catch (KeyNotFoundException e)
        {
            await Fail(ctx, StatusCodes.Status404NotFound, e.Message);
        }
    }

    private async Task Register(HttpContext ctx)
    {
        var request = await Read(ctx, AgentApiJson.Default.RegisterRequest);
        if (!EnrolmentToken.Matches(_options.EnrolmentToken, request.EnrolmentToken))
        {
            await Fail(ctx, StatusCodes.Status401Unauthorized, "the enrolment token is wrong");
            return;
        }

        if (request.ProtocolVersion != AgentApi.Version)
            throw new BodyException($"protocol version '{request.ProtocolVersion}' is not supported; this coordinator speaks {AgentApi.Version}");
        if (request.Device is null) throw new BodyException("'device' is required");
        string id = $"agent-{Interlocked.Increment(ref _agentCount)}";
        string token = EnrolmentToken.NewSecret();
        _sessions[token] = new AgentSession(id, request.Device, DateTimeOffset.UtcNow + _options.SessionLifetime);
        await Write(ctx, new RegisterResponse(id, token, _options.HeartbeatInterval.TotalSeconds, _options.LeaseTimeout.TotalSeconds), AgentApiJson.Default.RegisterResponse);
    }

    private async Task Work(HttpContext ctx)
    {
        var session = Authenticate(ctx)!;
        double wait = double.TryParse(ctx.Request.Query["wait"], System.Globalization.CultureInfo.InvariantCulture, out double w) ? Math.Clamp(w, 0, 30) : 20;
        var deadline = DateTime.UtcNow.AddSeconds(wait);
        while (true)
        {
            var lease = Queue.TryLease(session.AgentId);
            if (lease is not null)
            {
                await Write(ctx, lease, AgentApiJson.Default.WorkLease);
                return;
            }

            if (DateTime.UtcNow >= deadline || ctx.RequestAborted.IsCancellationRequested)
            {
                ctx.Response.StatusCode = StatusCodes.Status204NoContent;
                return;
            }

            await Task.Delay(50, ctx.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task Heartbeat(HttpContext ctx)
    {
        var session = Authenticate(ctx)!;
        var request = await Read(ctx, AgentApiJson.Default.HeartbeatRequest);
        Queue.Heartbeat(session.AgentId, request.CellId, request.Attempt);
        ctx.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    private async Task Events(HttpContext ctx, string cellId)
    {
        var session = Authenticate(ctx)!;
        var batch = await Read(ctx, AgentApiJson.Default.EventBatch);
        if (batch.Sequence < 0) throw new BodyException("'sequence' must be ≥ 0");
        long applied = Queue.ApplyEvents(session.AgentId, cellId, batch);
        await Write(ctx, new EventAck(applied), AgentApiJson.Default.EventAck);
    }

    private async Task Complete(HttpContext ctx, string cellId)
    {
        var session = Authenticate(ctx)!;
        var request = await Read(ctx, AgentApiJson.Default.CompletionRequest);
        Queue.Complete(session.AgentId, cellId, request);
        ctx.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    private async Task Submit(HttpContext ctx)
    {
        var request = await Read(ctx, QueueApiJson.Default.SubmitRequest);
        if (request.Cells is null) throw new BodyException("'cells' is required");
        int queued = 0, requeued = 0, present = 0;
        foreach (var c in request.Cells)
        {
            if (c is null || string.IsNullOrWhiteSpace(c.CellId) || c.Cell.ValueKind != JsonValueKind.Object)
                throw new BodyException("every cell needs a 'cell_id' and a 'cell' object");
            switch (Queue.Submit(c.CellId, c.Cell))
            {
                case SubmitOutcome.Queued: queued++; break;
                case SubmitOutcome.Requeued: requeued++; break;
                default: present++; break;
            }
        }

        if (queued + requeued > 0) _options.Log?.WriteLine($"queued {queued} cell(s), re-queued {requeued} failed one(s); {present} already present");
        await Write(ctx, new SubmitResponse(queued, requeued, present), QueueApiJson.Default.SubmitResponse);
    }

    private async Task ListCells(HttpContext ctx)
    {
        Reap();
        await Write(ctx, new QueueStatus(Queue.Statuses(), _agentCount, _options.LeaseTimeout.TotalSeconds), QueueApiJson.Default.QueueStatus);
    }

    private async Task CellStatusOf(HttpContext ctx, string cellId)
    {
        Reap();
        var status = Queue.Status(cellId) ?? throw new KeyNotFoundException($"no cell '{cellId}'");
        await Write(ctx, status, QueueApiJson.Default.CellStatus);
    }

    private void Reap()
    {
        foreach (string id in Queue.ReapExpired())
        {
            var c = Queue.Status(id);
            if (c is not null) _options.Log?.WriteLine($"cell {id}: {c.History.LastOrDefault()} → {(c.State == CellState.Failed ? "failed" : "queued again")}");
        }
    }

    private bool IsOperator(HttpContext ctx)
    {
        string header = ctx.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal) && EnrolmentToken.Matches(_options.EnrolmentToken, header["Bearer ".Length..].Trim());
    }

    private AgentSession? Authenticate(HttpContext ctx)
    {
        string header = ctx.Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal)) return null;
        if (!_sessions.TryGetValue(header["Bearer ".Length..].Trim(), out var session)) return null;
        return session.ExpiresAt > DateTimeOffset.UtcNow ? session : null;
    }

    private static async Task<T> Read<T>(HttpContext ctx, JsonTypeInfo<T> info)
    {
        if (ctx.Request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) != true)
            throw new BodyException("the body must be application/json");
        var value = await JsonSerializer.DeserializeAsync(ctx.Request.Body, info, ctx.RequestAborted);
        return value ?? throw new BodyException("the body is empty (null)");
    }

    private static async Task Write<T>(HttpContext ctx, T value, JsonTypeInfo<T> info)
    {
        ctx.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, info);
    }

    private static async Task Fail(HttpContext ctx, int status, string message)
    {
        if (ctx.Response.HasStarted) return;
        ctx.Response.StatusCode = status;
        await Write(ctx, new ErrorResponse(message), AgentApiJson.Default.ErrorResponse);
    }

    private sealed record AgentSession(string AgentId, DeviceDescription Device, DateTimeOffset ExpiresAt);

    private sealed class BodyException(string message) : Exception(message);

    /// <summary>A token bucket: bursts of twice the rate, refilled continuously.</summary>
    private sealed class RateBucket(double perSecond)
    {
        private readonly object _gate = new();
        private double _tokens = perSecond * 2;
        private long _last = Environment.TickCount64;

        public bool TryTake()
        {
            lock (_gate)
            {
                long now = Environment.TickCount64;
                _tokens = Math.Min(perSecond * 2, _tokens + (now - _last) / 1000.0 * perSecond);
                _last = now;
                if (_tokens < 1) return false;
                _tokens -= 1;
                return true;
            }
        }
    }
}
