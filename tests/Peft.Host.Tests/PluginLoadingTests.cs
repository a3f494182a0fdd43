using Microsoft.CodeAnalysis;
using Microsoft.Extensions.Configuration;
using Peft.Host.Hosting;
using Peft.Host.Plugins;

namespace Peft.Host.Tests;

/// <summary>Drop-in plugins built outside the solution, and plugins that cannot work, each explained by name.</summary>
public sealed class PluginLoadingTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("peft-plugins-");

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>A complete method: a head on frozen features, with its own generated options record.</summary>
    internal const string SampleMethod = """
        using System.Collections.Generic;
        using Peft.Abstractions.Backbone;
        using Peft.Abstractions.Methods;
        using Peft.Abstractions.Options;
        using Peft.Configuration;
        using TorchSharp;
        using static TorchSharp.torch;

        namespace Sample;

        [HyperParameters("Method:Options")]
        public sealed partial record SampleOptions
        {
            [Range(0.0, 10.0), Description("Scale of the pooled feature.")]
            public double FeatureScale { get; init; } = 1.0;
        }

        public sealed class SampleMethod(IVisionBackbone backbone, int classes, SampleOptions options) : IPeftMethod
        {
            private sealed class Holder : nn.Module { public Holder(ClassifierHead head) : base("Sample") => register_module("head", head); }
            private readonly ClassifierHead _head = new(backbone.Spec.Dim, classes);
            private Holder? _module;
            public nn.Module Module => _module ??= new Holder(_head);
            public Tensor Head(Tensor pooled) { using var scaled = pooled.mul(options.FeatureScale); return _head.forward(scaled); }
            public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone b) => Trainables.VptGroups(this, b, recipe);
            public void Dispose() => Module.Dispose();
        }

        [PeftMethod("sample-linear")]
        public sealed class SampleFactory : IMethodFactory
        {
            public string Description => "A drop-in sample: a scaled linear head.";
            public HyperParametersInfo Options { get; } = HyperParametersInfo.Of<SampleOptions>();
            public TrainerOptions DefaultRecipe() => new() { Epochs = 2, BaseLr = 1.0, WarmupEpochs = 0 };
            public IPeftMethod Create(MethodContext c) => new SampleMethod(c.Backbone, c.NumClasses, (SampleOptions)c.Options);
        }
        """;

    private string PluginDir(string name) => Path.Combine(_dir.FullName, name);

    private string Factory(string id, string body = "") => $$"""
        using Peft.Abstractions.Methods;
        using Peft.Abstractions.Options;
        using Peft.Configuration;
        namespace P;
        [PeftMethod("{{id}}")]
        public sealed class F : IMethodFactory
        {
            {{body}}
            public string Description => "test";
            public HyperParametersInfo Options => throw new System.NotSupportedException();
            public TrainerOptions DefaultRecipe() => new();
            public IPeftMethod Create(MethodContext c) => throw new System.NotSupportedException();
        }
        """;

    [Fact]
    public void The_four_prompt_methods_and_the_baselines_are_listed_with_their_options()
    {
        var r = PeftProcess.Run(_dir.FullName, "methods", "--describe");
        Assert.Equal(0, r.ExitCode);
        foreach (var id in new[] { "vpt", "gated", "vapt", "davpt", "davpt+", "linear", "bias", "full" })
            Assert.Contains($"│ {id} ", r.StdOut);
        foreach (var option in new[] { "PromptTokens", "GateInit", "KernelSize", "GuidedPrompts", "TokenAnchor", "HeadBias" })
            Assert.Contains(option, r.StdOut);
        Assert.DoesNotContain("plugin problem", r.StdErr);
    }

    [Fact]
    public void A_plugin_built_outside_the_solution_is_listed_and_trains_without_rebuilding_the_host()
    {
        PluginCompiler.Compile(PluginDir("Sample"), "Sample", PluginCompiler.Contracts(), SampleMethod);

        var catalog = MethodCatalog.Discover([], [_dir.FullName]);
        Assert.Empty(catalog.Problems);
        Assert.Equal("A drop-in sample: a scaled linear head.", catalog.Methods["sample-linear"].Factory.Description);

        var listed = PeftProcess.Run(_dir.FullName, "methods", "--describe", "Plugins:Folders=" + _dir.FullName);
        Assert.Equal(0, listed.ExitCode);
        Assert.Contains("sample-linear", listed.StdOut);
        Assert.Contains("FeatureScale", listed.StdOut);

        var trained = PeftProcess.Run(_dir.FullName, "train", "Plugins:Folders=" + _dir.FullName, "Method:Name=sample-linear",
            "Method:Options:FeatureScale=2", "Run:OutputDir=" + Path.Combine(_dir.FullName, "runs"), "Run:Name=sample",
            "Backbone:Checkpoint=", "Backbone:ImageSize=28", "Backbone:PatchSize=7", "Backbone:Channels=1", "Backbone:Dim=16",
            "Backbone:Depth=1", "Backbone:Heads=2", "Data:Classes=5,6", "Data:TrainSamples=64", "Trainer:BatchSize=32", "Trainer:Epochs=1");
        Assert.True(trained.ExitCode == 0, trained.StdOut + trained.StdErr);
        Assert.True(File.Exists(Path.Combine(_dir.FullName, "runs", "sample", "adapter.safetensors")));

        var bad = PeftProcess.Run(_dir.FullName, "train", "Plugins:Folders:0=" + _dir.FullName, "Method:Name=sample-linear",
            "Method:Options:FeatureScale=20", "Method:Options:FeatureScal=1");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("Method:Options:FeatureScale must be between 0 and 10 (found 20)", bad.StdErr);
        Assert.Contains("Method:Options:FeatureScal is not a known option; did you mean FeatureScale?", bad.StdErr);
    }

    [Fact]
    public void Faulty_plugins_are_explained_by_name_and_the_others_keep_working()
    {
        PluginCompiler.Compile(PluginDir("Good"), "Good", PluginCompiler.Contracts(), SampleMethod);

        // Throws while loading: its factory's constructor fails.
        PluginCompiler.Compile(PluginDir("Throwing"), "Throwing", PluginCompiler.Contracts(),
            Factory("throwing", "public F() => throw new System.InvalidOperationException(\"no licence file\");"));

        // A dependency that is not in its folder.
        var helperDir = Path.Combine(_dir.FullName, "..", _dir.Name + "-helper");
        var helper = PluginCompiler.Compile(helperDir, "Helper", [], "namespace H; public static class Util { public static string Name => \"h\"; }");
        PluginCompiler.Compile(PluginDir("Needy"), "Needy", [.. PluginCompiler.Contracts(), MetadataReference.CreateFromFile(helper)],
            Factory("needy", "public string HelperName { get; } = H.Util.Name;"));

        // Built against other contracts: a Peft.Abstractions 7.0, and one a minor version newer than the host's, with the same types.
        var host = MethodCatalog.ContractsVersion;
        var newer = $"{host.Major}.{host.Minor + 1}.0.0";
        BuiltAgainst("7.0.0.0", "Old", "old");
        BuiltAgainst(newer, "Newer", "newer");

        // Two plugins claiming one name.
        PluginCompiler.Compile(PluginDir("TwinA"), "TwinA", PluginCompiler.Contracts(), Factory("twin"));
        PluginCompiler.Compile(PluginDir("TwinB"), "TwinB", PluginCompiler.Contracts(), Factory("twin"));

        // An assembly dropped beside the plugin folders, and a folder whose assembly declares no method.
        File.Copy(Directory.GetFiles(PluginDir("TwinA"), "TwinA.dll").Single(), Path.Combine(_dir.FullName, "Stray.dll"));
        PluginCompiler.Compile(PluginDir("Empty"), "Empty", PluginCompiler.Contracts(), "namespace E; public static class Nothing { }");

        var catalog = MethodCatalog.Discover([], [_dir.FullName]);
        Assert.Equal(["sample-linear"], catalog.Methods.Keys);
        Assert.Contains(Path.Combine(_dir.FullName, "Stray.dll") + " is not loaded: a plugin is a folder of its own",
            Assert.Single(catalog.Problems, p => p.Message.Contains("Stray.dll", StringComparison.Ordinal)).Message);
        Assert.Contains("holds no [PeftMethod] factory, so it adds no method", Assert.Single(catalog.Problems, p => p.Message.Contains("plugin Empty", StringComparison.Ordinal)).Message);

        // `train Method:Name=twin` says why the method cannot be used, naming both folders, not that it is unknown.
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("Method:Name", "twin")]).Build();
        var issue = Assert.Single(Peft.Host.Hosting.PeftHost.Catalog().Validate(configuration, includeMethod: true, catalog),
            i => i.Path == "Method:Name").Message;
        Assert.StartsWith("Method:Name 'twin' cannot be used: method 'twin' is claimed by both", issue);
        Assert.Contains(PluginDir("TwinA"), issue);
        Assert.Contains(PluginDir("TwinB"), issue);
        string Problem(string plugin) => Assert.Single(catalog.Problems, p => p.Message.Contains(plugin, StringComparison.Ordinal)).Message;
        Assert.Contains("no licence file", Problem("Throwing"));
        Assert.Contains("Helper", Problem("Needy"));
        Assert.Contains($"built against Peft.Abstractions 7.0.0.0, but this host has {host}: another major version", Problem("Old"));
        Assert.Contains($"built against Peft.Abstractions {newer}, but this host has {host}: a newer minor version", Problem("Newer"));
        Assert.Contains("method 'twin' is claimed by both", Problem("TwinB"));

        Directory.Delete(helperDir, recursive: true);
    }

    /// <summary>A plugin compiled against a stand-in Peft.Abstractions of <paramref name="version"/> with the types it uses.</summary>
    private void BuiltAgainst(string version, string plugin, string id)
    {
        var stubDir = Path.Combine(_dir.FullName, "..", $"{_dir.Name}-stub-{plugin}");
        var stub = PluginCompiler.Compile(stubDir, "Peft.Abstractions", PluginCompiler.Contracts().Where(r => !r.Display!.EndsWith("Peft.Abstractions.dll")), $$"""
            [assembly: System.Reflection.AssemblyVersion("{{version}}")]
            namespace Peft.Abstractions.Options { public sealed class TrainerOptions { } }
            namespace Peft.Abstractions.Methods
            {
                public sealed class PeftMethodAttribute(string name) : System.Attribute { public string Name { get; } = name; }
                public sealed class MethodContext { }
                public interface IPeftMethod { }
                public interface IMethodFactory
                {
                    string Description { get; }
                    Peft.Configuration.HyperParametersInfo Options { get; }
                    Peft.Abstractions.Options.TrainerOptions DefaultRecipe();
                    IPeftMethod Create(MethodContext c);
                }
            }
            """);
        PluginCompiler.Compile(PluginDir(plugin), plugin,
            [.. PluginCompiler.Contracts().Where(r => !r.Display!.EndsWith("Peft.Abstractions.dll")), MetadataReference.CreateFromFile(stub)],
            Factory(id));
        Directory.Delete(stubDir, recursive: true);
    }

    [Fact]
    public void A_plugin_rebuilt_from_other_code_does_not_reuse_the_old_builds_run()
    {
        var rebuiltFolder = Path.Combine(_dir.FullName, "rebuilt");
        PluginCompiler.Compile(PluginDir("Sample"), "Sample", PluginCompiler.Contracts(), SampleMethod);
        PluginCompiler.Compile(Path.Combine(rebuiltFolder, "Sample"), "Sample", PluginCompiler.Contracts(),
            SampleMethod.Replace("a scaled linear head.", "a scaled linear head (rebuilt).", StringComparison.Ordinal));
        var built = MethodCatalog.Discover([], [_dir.FullName]).Methods["sample-linear"];
        var rebuilt = MethodCatalog.Discover([], [rebuiltFolder]).Methods["sample-linear"];
        Assert.NotEqual(built.Build.ContentHash, rebuilt.Build.ContentHash);

        // The run directory without Run:Name: everything that defines the run, the method's build included.
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Run:OutputDir"] = _dir.FullName }).Build();
        var job = new JobFactory(configuration, MethodCatalog.Discover([], []));
        var options = built.Factory.Options.Load(configuration, "Method:Options").GetValueOrThrow();
        var recipe = built.Factory.DefaultRecipe();
        var run = job.RunDirectory(built, options, recipe);
        Assert.StartsWith(Path.Combine(_dir.FullName, "sample-linear-"), run, StringComparison.Ordinal);
        Assert.Equal(run, job.RunDirectory(built, options, recipe));
        Assert.NotEqual(run, job.RunDirectory(rebuilt, options, recipe));
    }

    [Fact]
    public void Plugin_folders_are_bound_like_every_other_section()
    {
        var empty = Directory.CreateDirectory(Path.Combine(_dir.FullName, "empty")).FullName;
        var missing = Path.Combine(_dir.FullName, "missing");
        PluginCompiler.Compile(Path.Combine(_dir.FullName, "good", "Sample"), "Sample", PluginCompiler.Contracts(), SampleMethod);
        var ownFolder = Path.Combine(_dir.FullName, "good", "Sample");

        var r = PeftProcess.Run(_dir.FullName, "methods", $"Plugins:Folders={missing},{empty}", "Plugins:Foldres=x");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains($"Plugins:Folders names '{missing}', which is not a folder", r.StdErr);
        Assert.Contains($"Plugins:Folders names '{empty}', which holds no plugin (a plugins folder holds one folder per plugin, Name/Name.dll)", r.StdErr);
        Assert.Contains("Plugins:Foldres is not a known option; did you mean Folders?", r.StdErr);

        // A plugin's own folder named instead of its parent: the message says which to name.
        var own = PeftProcess.Run(_dir.FullName, "methods", "Plugins:Folders:0=" + ownFolder);
        Assert.Equal(2, own.ExitCode);
        Assert.Contains($"{Path.Combine(ownFolder, "Sample.dll")} is a plugin itself: name its parent folder", own.StdErr);

        // An unknown method names the folders searched and the plugins that could not be used.
        var unknown = PeftProcess.Run(_dir.FullName, "train", "Plugins:Folders=" + Path.Combine(_dir.FullName, "good"), "Method:Name=sampel-linear");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("Method:Name 'sampel-linear' is not a known method; did you mean sample-linear?", unknown.StdErr);
        Assert.Contains($"Plugins were searched in {Path.Combine(PeftProcess.RepoRoot, "artifacts", "plugins")}, {Path.Combine(_dir.FullName, "good")}", unknown.StdErr);
    }
}
