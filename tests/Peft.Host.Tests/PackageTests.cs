using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Host.Plugins;
using Peft.Tests.Shared;

namespace Peft.Host.Tests;

/// <summary>
/// Extending Peft from outside the repository, as a plugin author does: both packages packed into a temporary local
/// feed, the peft-method template installed (in a hive of its own) and instantiated in a temporary folder, a prefix-tuning
/// plugin written outside the repository, both built against that feed alone (third-party packages from this machine's
/// NuGet cache, read-only), and the plugins dropped into a Plugins:Folders folder. Built once for the class.
/// </summary>
public sealed class ExtensionKit : IDisposable
{
    /// <summary>A version no cache has seen, so the packages restored are the ones packed here.</summary>
    public string PackageVersion { get; } = $"{MethodCatalog.ContractsVersion.ToString(3)}-e2e.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";

    public DirectoryInfo Root { get; } = Directory.CreateTempSubdirectory("peft-e2e-");

    public string Feed => Path.Combine(Root.FullName, "feed");

    /// <summary>The Plugins:Folders folder both plugins are dropped into.</summary>
    public string Plugins => Path.Combine(Root.FullName, "plugins");

    /// <summary>The instantiated template (a solution folder with the plugin and its tests).</summary>
    public string Template => Path.Combine(Root.FullName, "work", "KeyValueDemo");

    public string Prefix => Path.Combine(Root.FullName, "work", "PrefixTuning");

    /// <summary>`dotnet test` of the template's solution.</summary>
    public PeftProcess.Result TemplateTests { get; }

    public ExtensionKit()
    {
        var repo = PeftProcess.RepoRoot;
        Directory.CreateDirectory(Plugins);
        foreach (var packed in new[] { "abstractions/Peft.Abstractions/Peft.Abstractions.csproj", "templates/Peft.Templates/Peft.Templates.csproj" })
            Dotnet(repo, "pack", Path.Combine(repo, packed), "-c", Configuration, "--no-build", "-o", Feed, $"-p:PackageVersion={PackageVersion}");

        // Peft.* comes from the feed alone (package source mapping); everything else from this machine's own package
        // sources, found first in its NuGet cache, which is read as a fallback folder and never written.
        var work = Directory.CreateDirectory(Path.Combine(Root.FullName, "work")).FullName;
        var machineCache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var machineSources = MachineSources(work);
        File.WriteAllText(Path.Combine(work, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <config><add key="globalPackagesFolder" value="{Path.Combine(Root.FullName, "packages")}" /></config>
              <packageSources>
                <clear />
                <add key="peft-e2e" value="{Feed}" />
            {string.Concat(machineSources.Select((s, i) => $"    <add key=\"machine{i}\" value=\"{s}\" />\n"))}  </packageSources>
              <packageSourceMapping>
                <packageSource key="peft-e2e"><package pattern="Peft.*" /></packageSource>
            {string.Concat(machineSources.Select((_, i) => $"    <packageSource key=\"machine{i}\"><package pattern=\"*\" /></packageSource>\n"))}  </packageSourceMapping>
              <fallbackPackageFolders><clear /><add key="machine" value="{machineCache}" /></fallbackPackageFolders>
            </configuration>
            """);

        var hive = Path.Combine(Root.FullName, "template-hive");
        Dotnet(work, "new", "install", Path.Combine(Feed, $"Peft.Templates.{PackageVersion}.nupkg"), "--debug:custom-hive", hive);
        Dotnet(work, "new", "peft-method", "-n", "KeyValueDemo", "--debug:custom-hive", hive);
        TemplateTests = Run(Template, "test", "-c", "Release", "-nologo");
        CopyFolder(Path.Combine(Template, "artifacts", "plugins", "KeyValueDemo"), Path.Combine(Plugins, "KeyValueDemo"));

        // The README's plugin project file, with the version packed here.
        CopyFolder(Path.Combine(AppContext.BaseDirectory, "ExternalPlugin", "PrefixTuning"), Prefix);
        var project = Path.Combine(Prefix, "PrefixTuning.csproj");
        File.WriteAllText(project, System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(project),
            "(Include=\"Peft.Abstractions\" Version=)\"[^\"]*\"", $"$1\"{PackageVersion}\""));
        Dotnet(Prefix, "build", "-c", "Release", "-nologo");
        CopyFolder(Path.Combine(Prefix, "bin", "Release", "net10.0"), Path.Combine(Plugins, "PrefixTuning"));
    }

#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif

    public void Dispose() => Root.Delete(recursive: true);

    /// <summary>The enabled package sources of this machine's NuGet configuration (`dotnet nuget list source`).</summary>
    private static List<string> MachineSources(string directory)
    {
        var listed = Run(directory, "nuget", "list", "source", "--format", "Short");
        if (listed.ExitCode != 0) throw new InvalidOperationException("dotnet nuget list source failed:\n" + listed.StdOut + listed.StdErr);
        // Short format: one "E <source>" line per enabled source ("D" for disabled ones).
        return [.. listed.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.StartsWith("E ", StringComparison.Ordinal)).Select(l => System.Security.SecurityElement.Escape(l[2..].Trim()))];
    }

    private static void CopyFolder(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }

    private static void Dotnet(string directory, params string[] args)
    {
        var result = Run(directory, args);
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"dotnet {string.Join(' ', args)} failed ({result.ExitCode}):\n{result.StdOut}\n{result.StdErr}");
    }

    /// <summary>The SDK as a user runs it: none of the test host's MSBuild settings, no telemetry.</summary>
    private static PeftProcess.Result Run(string directory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k == "NUGET_PACKAGES").ToList())
            start.Environment.Remove(key);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {string.Join(' ', args)} did not finish in 5 minutes");
        }
        return new PeftProcess.Result(process.ExitCode, stdout.Result, stderr.Result);
    }
}

public sealed class PackageTests(ExtensionKit kit) : IClassFixture<ExtensionKit>
{
    private string[] TinyRun(string method, string name, params string[] more) =>
    [
        "train", "Plugins:Folders=" + kit.Plugins, "Method:Name=" + method, "Run:OutputDir=" + Path.Combine(kit.Root.FullName, "runs"),
        "Run:Name=" + name, "Backbone:Checkpoint=", "Backbone:ImageSize=28", "Backbone:PatchSize=7", "Backbone:Channels=1", "Backbone:Dim=16",
        "Backbone:Depth=2", "Backbone:Heads=2", "Data:Classes=5,6", "Data:TrainSamples=64", "Trainer:BatchSize=32", "Trainer:Epochs=2",
        "Trainer:WarmupEpochs=0", .. more,
    ];

    private static JsonElement Results(string runDirectory) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(runDirectory, "results.json"))).RootElement;

    [Fact]
    public void The_template_builds_against_the_package_alone_and_its_parameter_count_test_passes()
    {
        Assert.True(kit.TemplateTests.ExitCode == 0, kit.TemplateTests.StdOut + kit.TemplateTests.StdErr);
        Assert.Contains("Passed!  - Failed:     0, Passed:     1", kit.TemplateTests.StdOut);
        foreach (var file in new[] { "KeyValueDemo/KeyValueDemoOptions.cs", "KeyValueDemo/KeyValueDemoMethod.cs", "KeyValueDemo/KeyValueDemoFactory.cs",
                     "README.md", "KeyValueDemo.Tests/KeyValueDemoTests.cs" })
            Assert.True(File.Exists(Path.Combine(kit.Template, file)), file + " missing");
        Assert.Contains("[PeftMethod(\"key-value-demo\")]", File.ReadAllText(Path.Combine(kit.Template, "KeyValueDemo", "KeyValueDemoFactory.cs")));
        // The only package restored into the isolated folder is the one packed here.
        Assert.Equal(["peft.abstractions"], Directory.EnumerateDirectories(Path.Combine(kit.Root.FullName, "packages")).Select(Path.GetFileName));
    }

    [Fact]
    public void The_built_projects_name_no_repository_path()
    {
        var repo = PeftProcess.RepoRoot;
        var files = new[] { kit.Template, kit.Prefix }
            .SelectMany(d => Directory.EnumerateFiles(d, "*", SearchOption.AllDirectories))
            .Where(f => f.EndsWith(".csproj", StringComparison.Ordinal) || f.EndsWith("project.assets.json", StringComparison.Ordinal)
                        || f.EndsWith(".deps.json", StringComparison.Ordinal) || f.EndsWith(".props", StringComparison.Ordinal))
            .ToList();
        Assert.NotEmpty(files);
        Assert.All(files, f => Assert.DoesNotContain(repo, File.ReadAllText(f), StringComparison.Ordinal));
    }

    [Fact]
    public void A_plugin_folder_holds_the_plugin_and_none_of_the_hosts_assemblies()
    {
        foreach (var plugin in new[] { "KeyValueDemo", "PrefixTuning" })
        {
            var files = Directory.EnumerateFiles(Path.Combine(kit.Plugins, plugin), "*", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(Path.Combine(kit.Plugins, plugin), f)).Order(StringComparer.Ordinal).ToList();
            Assert.Contains($"{plugin}.dll", files);
            Assert.Contains($"{plugin}.deps.json", files);
            // Nothing but the plugin's own files: no contracts, TorchSharp, its dependencies or natives, Microsoft.Extensions.*.
            Assert.All(files, f => Assert.StartsWith(plugin + ".", f, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Peft_lists_both_drop_in_plugins_with_their_options_and_builds()
    {
        var listed = PeftProcess.Run(kit.Root.FullName, "methods", "--describe", "Plugins:Folders=" + kit.Plugins);
        Assert.True(listed.ExitCode == 0, listed.StdOut + listed.StdErr);
        Assert.Contains("│ key-value-demo ", listed.StdOut);
        Assert.Contains("│ prefix ", listed.StdOut);
        Assert.Contains("PrefixTokens", listed.StdOut);
        Assert.Contains($"Plugin folders searched: {Path.Combine(PeftProcess.RepoRoot, "artifacts", "plugins")}, {kit.Plugins}", listed.StdOut);
        Assert.DoesNotContain("plugin problem", listed.StdErr);

        // Each plugin's build is identified by its version and the hash of its file (what a run's identity can include).
        var catalog = MethodCatalog.Discover([], [kit.Plugins]);
        Assert.Empty(catalog.Problems);
        var build = catalog.Methods["prefix"].Build;
        Assert.Equal("PrefixTuning", build.Name);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
            File.ReadAllBytes(Path.Combine(kit.Plugins, "PrefixTuning", "PrefixTuning.dll"))))[..16], build.ContentHash);
        Assert.Contains($"{build.Version} ({build.ContentHash})", listed.StdOut);
        Assert.NotEqual(build.ContentHash, catalog.Methods["key-value-demo"].Build.ContentHash);
    }

    [Fact]
    public void Peft_trains_the_template_method()
    {
        var trained = PeftProcess.Run(kit.Root.FullName, TinyRun("key-value-demo", "template", "Method:Options:PromptTokens=3"));
        Assert.True(trained.ExitCode == 0, trained.StdOut + trained.StdErr);
        // 3 prompts of width 16, and the head 17 × 2.
        Assert.Equal(3 * 16 + 17 * 2, Results(Path.Combine(kit.Root.FullName, "runs", "template")).GetProperty("trainableParameters").GetInt64());
    }

    [Fact]
    public void Peft_trains_the_prefix_plugin_and_its_options_are_validated()
    {
        var trained = PeftProcess.Run(kit.Root.FullName, TinyRun("prefix", "prefix", "Method:Options:PrefixTokens=2"));
        Assert.True(trained.ExitCode == 0, trained.StdOut + trained.StdErr);
        var run = Path.Combine(kit.Root.FullName, "runs", "prefix");
        Assert.True(File.Exists(Path.Combine(run, "adapter.safetensors")));
        // Keys and values: 2 blocks × 2 tokens × 16, twice; the head 17 × 2.
        Assert.Equal(2 * (2 * 2 * 16) + 17 * 2, Results(run).GetProperty("trainableParameters").GetInt64());
        var metrics = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList();
        Assert.Equal(2, metrics.Count);
        Assert.All(metrics, l => Assert.True(double.IsFinite(l)));

        var bad = PeftProcess.Run(kit.Root.FullName, TinyRun("prefix", "bad", "Method:Options:PrefixTokens=0", "Method:Options:PrefixToken=2"));
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("Method:Options:PrefixTokens must be between 1 and 1000 (found 0)", bad.StdErr);
        Assert.Contains("Method:Options:PrefixToken is not a known option; did you mean PrefixTokens?", bad.StdErr);
    }

    [Fact]
    public void The_prefix_plugin_matches_the_pytorch_reference()
    {
        var entry = MethodCatalog.Discover([], [kit.Plugins]).Methods["prefix"];
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Method:Options:PrefixTokens"] = "3" }).Build();
        var options = entry.Factory.Options.Load(configuration, "Method:Options").GetValueOrThrow();
        using var vit = MethodTestSupport.ReferenceVit();
        using var method = entry.Factory.Create(new Abstractions.Methods.MethodContext(vit, 5, options, Seed: 1));
        // Logits, loss and the gradients of the keys, values and head of tests/reference/prefix_reference.py, to 1e-5.
        MethodTestSupport.AssertMatchesReference("prefix_reference.npz", vit, method);
    }
}
