using System.Reflection;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Peft.Generators;

namespace Peft.Host.Tests;

/// <summary>Builds plugin assemblies outside the solution, as a third party would, with Roslyn and the options generator.</summary>
public static class PluginCompiler
{
    private static readonly Lazy<List<MetadataReference>> s_platform = new(() =>
        ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
        .Where(p => Path.GetFileName(p).StartsWith("System.", StringComparison.Ordinal) || Path.GetFileName(p) is "netstandard.dll" or "mscorlib.dll"
            || Path.GetFileName(p).StartsWith("Microsoft.Extensions.", StringComparison.Ordinal))
        .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p)).ToList());

    /// <summary>The contracts as the host ships them.</summary>
    public static IEnumerable<MetadataReference> Contracts() =>
        new[] { "Peft.Abstractions.dll", "TorchSharp.dll", "Peft.Configuration.dll" }
            .Select(f => MetadataReference.CreateFromFile(Path.Combine(AppContext.BaseDirectory, f)));

    /// <summary>Compiles <paramref name="sources"/> into <paramref name="folder"/>/<paramref name="name"/>.dll and returns its path.</summary>
    public static string Compile(string folder, string name, IEnumerable<MetadataReference> references, params string[] sources)
    {
        var trees = sources.Select(s => CSharpSyntaxTree.ParseText(s, new CSharpParseOptions(LanguageVersion.Latest))).ToList();
        Compilation compilation = CSharpCompilation.Create(name, trees, s_platform.Value.Concat(references),
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));
        CSharpGeneratorDriver.Create(new HyperParametersGenerator()).RunGeneratorsAndUpdateCompilation(compilation, out compilation, out _);
        Directory.CreateDirectory(folder);
        var path = Path.Combine(folder, name + ".dll");
        var result = compilation.Emit(path);
        if (!result.Success)
            throw new InvalidOperationException($"{name} does not compile:\n" +
                string.Join("\n", result.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error)));
        return path;
    }
}
