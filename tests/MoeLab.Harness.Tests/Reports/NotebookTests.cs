using System.Diagnostics;
using System.Text.Json;
using MoeLab.Harness.Tests.Runs;

namespace MoeLab.Harness.Tests.Reports;

/// <summary>
/// The notebooks' C# code cells, compiled against the current harness: the cells (minus .NET Interactive's
/// <c>#r</c>/<c>#!</c> directives) become a top-level program in a throwaway project that references the harness.
/// </summary>
public sealed class NotebookTests
{
    [Fact]
    [Trait("Category", "Slow")]
    public async Task NotebookCodeCellsCompileAgainstTheCurrentLibraries()
    {
        string repo = KillResumeTests.RepoRoot();
        var notebooks = Directory.GetFiles(Path.Combine(repo, "notebooks"), "*.ipynb");
        Assert.NotEmpty(notebooks);
        foreach (string notebook in notebooks)
        {
            var (usings, body) = CodeOf(notebook);
            Assert.NotEmpty(body);
            using var temp = new TempDirectory("moelab-notebook");
            string dir = temp.Path;
            File.WriteAllText(Path.Combine(dir, "Program.cs"), string.Join("\n", usings) + "\n" + string.Join("\n", body) + "\n");
            File.WriteAllText(Path.Combine(dir, "Notebook.csproj"), $"""
                <Project Sdk="Microsoft.NET.Sdk">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <Nullable>disable</Nullable>
                    <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
                  </PropertyGroup>
                  <ItemGroup>
                    <ProjectReference Include="{Path.Combine(repo, "src", "MoeLab.Harness", "MoeLab.Harness.csproj")}" />
                  </ItemGroup>
                </Project>
                """);
            var psi = new ProcessStartInfo("dotnet", ["build", dir, "-c", "Release", "-nologo", "-v", "q"]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            string stderr = await p.StandardError.ReadToEndAsync();
            await p.WaitForExitAsync();
            Assert.True(p.ExitCode == 0, $"{Path.GetFileName(notebook)} does not compile:\n{await stdout}\n{stderr}");
        }
    }

    /// <summary>Code cells in order; <c>using X;</c> lines are hoisted (a top-level program needs them first), directives dropped.</summary>
    internal static (List<string> Usings, List<string> Body) CodeOf(string notebook)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(notebook));
        var usings = new List<string>();
        var body = new List<string>();
        foreach (var cell in doc.RootElement.GetProperty("cells").EnumerateArray())
        {
            if (cell.GetProperty("cell_type").GetString() != "code") continue;
            string source = string.Concat(cell.GetProperty("source").EnumerateArray().Select(l => l.GetString()));
            foreach (string line in source.Split('\n'))
            {
                string t = line.Trim();
                if (t.StartsWith("#r ", StringComparison.Ordinal) || t.StartsWith("#!", StringComparison.Ordinal)) continue;
                if (t.StartsWith("using ", StringComparison.Ordinal) && !t.StartsWith("using var ", StringComparison.Ordinal) && !t.Contains('(') && t.EndsWith(';')) usings.Add(t);
                else body.Add(line);
            }
        }

        return (usings, body);
    }
}
