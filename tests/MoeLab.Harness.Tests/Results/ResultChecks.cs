using System.Globalization;

namespace MoeLab.Harness.Tests;

/// <summary>Independent re-computation of summary figures from tokens.csv (plain parsing, no harness code).</summary>
internal static class ResultChecks
{
    public static void SummaryMatchesTokensCsv(string directory, int expectedCells)
    {
        var tokens = ReadCsv(Path.Combine(directory, "tokens.csv"));
        var summary = ReadCsv(Path.Combine(directory, "summary.csv"));
        Assert.Equal(expectedCells, summary.Count);
        Assert.Equal(expectedCells, summary.Select(r => r["cell_id"]).Distinct().Count());
        foreach (var row in summary)
        {
            var mine = tokens.Where(t => t["cell_id"] == row["cell_id"]).ToList();
            Assert.NotEmpty(mine);
            var perRep = mine.GroupBy(t => t["repetition"]).Select(g => g.Count() / (g.Sum(t => D(t["wall_ms"])) / 1000)).ToList();
            double mean = perRep.Average();
            double hits = mine.Sum(t => D(t["hits"])), misses = mine.Sum(t => D(t["misses"])), prefetchHits = mine.Sum(t => D(t["prefetch_hits"]));
            Assert.Equal(mine.Count, int.Parse(row["tokens"], CultureInfo.InvariantCulture));
            Assert.Equal(mean, D(row["tps_mean"]), 9);
            Assert.Equal((hits + prefetchHits) / (hits + misses + prefetchHits), D(row["hit_rate"]), 12);
            Assert.Equal(hits, D(row["hits"]));
            Assert.Equal(misses, D(row["misses"]));
            Assert.Equal(prefetchHits, D(row["prefetch_hits"]));
            Assert.Equal(mine.Sum(t => D(t["bytes_read"])) / mine.Count, D(row["bytes_per_token"]), 6);
            if (perRep.Count > 1)
            {
                double sd = Math.Sqrt(perRep.Sum(x => (x - mean) * (x - mean)) / (perRep.Count - 1));
                Assert.Equal(sd, D(row["tps_stddev"]), 9);
            }
        }
    }

    /// <summary>
    /// layers.csv per cell sums to the cell's hits, misses and prefetch hits in summary.csv, and each row's hit rate
    /// is (hits + prefetch hits) / requests. Every cell must have layer rows.
    /// </summary>
    public static void LayersSumToSummary(string directory, int expectedLayers)
    {
        var layers = ReadCsv(Path.Combine(directory, "layers.csv"));
        var summary = ReadCsv(Path.Combine(directory, "summary.csv"));
        foreach (var row in summary)
        {
            var mine = layers.Where(l => l["cell_id"] == row["cell_id"]).ToList();
            Assert.Equal(Enumerable.Range(0, expectedLayers).Select(i => i.ToString(CultureInfo.InvariantCulture)), mine.Select(l => l["layer"]));
            Assert.Equal(D(row["hits"]), mine.Sum(l => D(l["hits"])));
            Assert.Equal(D(row["misses"]), mine.Sum(l => D(l["misses"])));
            Assert.Equal(D(row["prefetch_hits"]), mine.Sum(l => D(l["prefetch_hits"])));
            foreach (var l in mine)
            {
                double requests = D(l["hits"]) + D(l["misses"]) + D(l["prefetch_hits"]);
                Assert.Equal(requests, D(l["requests"]));
                if (requests > 0) Assert.Equal((D(l["hits"]) + D(l["prefetch_hits"])) / requests, D(l["hit_rate"]), 12);
            }
        }
    }

    public static double D(string s) => double.Parse(s, CultureInfo.InvariantCulture);

    /// <summary>A minimal CSV reader for our own files (quoted fields allowed, no embedded newlines).</summary>
    public static List<Dictionary<string, string>> ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path);
        var header = Split(lines[0]);
        return lines.Skip(1).Where(l => l.Length > 0).Select(l =>
        {
            var f = Split(l);
            Assert.Equal(header.Count, f.Count);
            return header.Zip(f).ToDictionary(p => p.First, p => p.Second);
        }).ToList();
    }

    private static List<string> Split(string line)
    {
        var fields = new List<string>();
        var sb = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else sb.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(sb.ToString()); sb.Clear(); }
            else sb.Append(c);
        }

        fields.Add(sb.ToString());
        return fields;
    }
}
