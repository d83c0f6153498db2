using System.Text.Json.Serialization;

namespace MoeLab.Harness.Results;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(CellRecord))]
[JsonSerializable(typeof(CellFailure))]
[JsonSerializable(typeof(Manifest))]
[JsonSerializable(typeof(List<CellSummary>))]
public sealed partial class ResultsJson : JsonSerializerContext;
