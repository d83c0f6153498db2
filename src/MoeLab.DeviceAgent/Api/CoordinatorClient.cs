using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace MoeLab.DeviceAgent.Api;

/// <summary>A coordinator refused the agent's credentials; retrying the same request cannot help.</summary>
public sealed class CoordinatorAuthException(string message) : Exception(message);

/// <summary>
/// The agent's side of the protocol over HTTP. Transient failures (connection refused or dropped, 5xx, 429)
/// are retried with capped exponential back-off; 401 and 400 are not, because they will not change.
/// </summary>
public sealed class CoordinatorClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly TimeSpan _maxBackoff;
    private string? _session;

    public CoordinatorClient(Uri coordinator, TimeSpan? maxBackoff = null, HttpMessageHandler? handler = null)
    {
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.BaseAddress = coordinator;
        _http.Timeout = TimeSpan.FromSeconds(90);
        _maxBackoff = maxBackoff ?? TimeSpan.FromSeconds(10);
    }

    /// <summary>Transient failures seen so far (for logs and tests).</summary>
    public int Retries { get; private set; }

    public RegisterResponse Register(RegisterRequest request, CancellationToken cancel)
    {
        var response = Send(HttpMethod.Post, AgentApi.Register, request, AgentApiJson.Default.RegisterRequest, AgentApiJson.Default.RegisterResponse, cancel, authenticated: false)
            ?? throw new InvalidDataException("the coordinator answered registration with no body");
        _session = response.SessionToken;
        return response;
    }

    /// <summary>Long-polls for a cell; null when none came within the wait.</summary>
    public WorkLease? Poll(TimeSpan wait, CancellationToken cancel) =>
        Send<object, WorkLease>(HttpMethod.Get, $"{AgentApi.Work}?wait={(int)wait.TotalSeconds}", null, null, AgentApiJson.Default.WorkLease, cancel);

    public void Heartbeat(HeartbeatRequest request, CancellationToken cancel) =>
        Send<HeartbeatRequest, ErrorResponse>(HttpMethod.Post, AgentApi.Heartbeat, request, AgentApiJson.Default.HeartbeatRequest, null, cancel, retry: false);

    public EventAck SendEvents(string cellId, EventBatch batch, CancellationToken cancel) =>
        Send(HttpMethod.Post, AgentApi.Events(cellId), batch, AgentApiJson.Default.EventBatch, AgentApiJson.Default.EventAck, cancel)
        ?? throw new InvalidDataException("the coordinator acknowledged an event batch with no body");

    public void Complete(string cellId, CompletionRequest request, CancellationToken cancel) =>
        Send<CompletionRequest, ErrorResponse>(HttpMethod.Post, AgentApi.Complete(cellId), request, AgentApiJson.Default.CompletionRequest, null, cancel);

    public void Dispose() => _http.Dispose();

    private TResponse? Send<TRequest, TResponse>(HttpMethod method, string path, TRequest? body, JsonTypeInfo<TRequest>? requestInfo,
        JsonTypeInfo<TResponse>? responseInfo, CancellationToken cancel, bool authenticated = true, bool retry = true)
        where TResponse : class
    {
        TimeSpan backoff = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            cancel.ThrowIfCancellationRequested();
            HttpResponseMessage response;
            try
            {
                using var message = new HttpRequestMessage(method, path);
                if (authenticated)
                {
                    if (_session is null) throw new InvalidOperationException("register before using the session");
                    message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _session);
                }

                if (body is not null && requestInfo is not null)
                    message.Content = new StringContent(JsonSerializer.Serialize(body, requestInfo), Encoding.UTF8, "application/json");
                response = _http.Send(message, HttpCompletionOption.ResponseContentRead, cancel);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException && !cancel.IsCancellationRequested)
            {
                if (!retry) throw;
                Wait(ref backoff, cancel);
                continue;
            }

            using (response)
            {
                if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden)
                    throw new CoordinatorAuthException($"{method} {path}: the coordinator refused the agent's token ({(int)response.StatusCode}): {ReadError(response)}");
                if ((int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    if (!retry) throw new HttpRequestException($"{method} {path}: {(int)response.StatusCode}");
                    Wait(ref backoff, cancel);
                    continue;
                }

                if (!response.IsSuccessStatusCode)
                    throw new InvalidDataException($"{method} {path}: the coordinator answered {(int)response.StatusCode}: {ReadError(response)}");
                if (response.StatusCode == HttpStatusCode.NoContent || responseInfo is null) return null;
                try
                {
                    using var stream = response.Content.ReadAsStream(cancel);
                    return JsonSerializer.Deserialize(stream, responseInfo);
                }
                catch (ObjectDisposedException) when (cancel.IsCancellationRequested)
                {
                    // Cancelling mid-read disposes the content; report it as the cancellation it is.
                    throw new OperationCanceledException(cancel);
                }
            }
        }
    }

    private void Wait(ref TimeSpan backoff, CancellationToken cancel)
    {
        Retries++;
        cancel.WaitHandle.WaitOne(backoff);
        backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _maxBackoff.Ticks));
    }

    private static string ReadError(HttpResponseMessage response)
    {
        try
        {
            string text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
            return text.Length > 500 ? text[..500] : text;
        }
        catch (HttpRequestException)
        {
            return "";
        }
    }
}
