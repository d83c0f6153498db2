using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using MoeLab.DeviceAgent.Api;

namespace MoeLab.Harness.Coordinator;

/// <summary>
/// The harness's client of a running coordinator's queue (<see cref="QueueApi"/>): submits cells and reads their
/// state. Authenticates with the enrolment token.
/// </summary>
public sealed class CoordinatorQueueClient : IDisposable
{
    private readonly HttpClient _http;

    public CoordinatorQueueClient(Uri address, string enrolmentToken)
    {
        Address = address;
        _http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(60) };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", enrolmentToken);
    }

    public Uri Address { get; }

    /// <summary>
    /// Connects to a coordinator at <paramref name="address"/>: the client when one answers and accepts the token;
    /// null with a null <paramref name="refusal"/> when nothing listens there; null with the reason when something
    /// listens but refuses (wrong token, not a coordinator).
    /// </summary>
    public static CoordinatorQueueClient? TryConnect(Uri address, string enrolmentToken, string tokenFile, out string? refusal)
    {
        refusal = null;
        var client = new CoordinatorQueueClient(address, enrolmentToken);
        try
        {
            using var response = client._http.Send(new HttpRequestMessage(HttpMethod.Get, QueueApi.Cells));
            if (response.StatusCode == HttpStatusCode.OK) return client;
            refusal = response.StatusCode == HttpStatusCode.Unauthorized
                ? $"a coordinator at {address} refuses the enrolment token in {tokenFile}; use the token file of that `moelab serve` (agents.token_file)"
                : $"something at {address} answered {(int)response.StatusCode} {response.StatusCode}; it is not a MoeLab coordinator of protocol {AgentApi.Version}";
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
        {
        }
        catch (HttpRequestException e)
        {
            refusal = $"could not talk to {address}: {e.Message}";
        }

        client.Dispose();
        return null;
    }

    public SubmitResponse Submit(IReadOnlyList<SubmittedCell> cells) =>
        Send(HttpMethod.Post, QueueApi.Cells, new SubmitRequest([.. cells]), QueueApiJson.Default.SubmitRequest, QueueApiJson.Default.SubmitResponse);

    public CellStatus Status(string cellId) =>
        Send<object, CellStatus>(HttpMethod.Get, QueueApi.Cell(cellId), null, null, QueueApiJson.Default.CellStatus);

    public QueueStatus List() =>
        Send<object, QueueStatus>(HttpMethod.Get, QueueApi.Cells, null, null, QueueApiJson.Default.QueueStatus);

    public void Dispose() => _http.Dispose();

    private TResponse Send<TRequest, TResponse>(HttpMethod method, string path, TRequest? body, JsonTypeInfo<TRequest>? requestInfo, JsonTypeInfo<TResponse> responseInfo)
    {
        using var message = new HttpRequestMessage(method, path);
        if (body is not null && requestInfo is not null)
            message.Content = new StringContent(JsonSerializer.Serialize(body, requestInfo), Encoding.UTF8, "application/json");
        using var response = _http.Send(message);
        using var reader = new StreamReader(response.Content.ReadAsStream());
        string text = reader.ReadToEnd();
        if (!response.IsSuccessStatusCode)
        {
            string reason = text;
            try
            {
                reason = JsonSerializer.Deserialize(text, AgentApiJson.Default.ErrorResponse)?.Error ?? text;
            }
            catch (JsonException)
            {
            }

            throw new InvalidOperationException($"coordinator {Address}: {method} {path} answered {(int)response.StatusCode}: {reason}");
        }

        return JsonSerializer.Deserialize(text, responseInfo) ?? throw new InvalidDataException($"coordinator {Address}: {method} {path} answered with an empty body");
    }
}
