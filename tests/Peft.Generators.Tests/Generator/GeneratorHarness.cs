using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace Peft.Generators.Tests.Generator;

/// <summary>Runs <see cref="HyperParametersGenerator"/> on in-memory sources with CSharpGeneratorDriver.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Latest);

    // Everything the test host itself runs with: the framework, Peft.Configuration, Microsoft.Extensions.Configuration.
    private static readonly ImmutableArray<MetadataReference> References =
    [
        .. ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator)
            .Where(path => !path.EndsWith("Peft.Generators.Tests.dll", StringComparison.Ordinal))
            .Select(path => MetadataReference.CreateFromFile(path)),
    ];

    public static CSharpCompilation Compile(params string[] sources) =>
        CSharpCompilation.Create(
            "Sample",
            sources.Select((source, i) => Tree(source, $"Source{i}.cs")),
            References,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable));

    public static SyntaxTree Tree(string source, string path) => CSharpSyntaxTree.ParseText(source, ParseOptions, path);

    public static GeneratorDriver CreateDriver() =>
        CSharpGeneratorDriver.Create(
            [new HyperParametersGenerator().AsSourceGenerator()],
            parseOptions: ParseOptions,
            driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    /// <summary>Runs the generator once and compiles its output with the input.</summary>
    public static GeneratorRun Run(params string[] sources)
    {
        var driver = CreateDriver().RunGeneratorsAndUpdateCompilation(Compile(sources), out var output, out var diagnostics);
        return new GeneratorRun(driver.GetRunResult().Results.Single(), output, diagnostics);
    }

    /// <summary>The source the generator added for a type (by full name) or for the registration.</summary>
    public static string Source(this GeneratorRun run, string hintName) =>
        run.Result.GeneratedSources.Single(source => source.HintName == hintName).SourceText.ToString();
}

internal sealed record GeneratorRun(GeneratorRunResult Result, Compilation Output, ImmutableArray<Diagnostic> GeneratorDiagnostics)
{
    /// <summary>Errors and warnings of compiling the input together with the generated code.</summary>
    public IEnumerable<string> CompilationProblems =>
        Output.GetDiagnostics()
            .Where(diagnostic => diagnostic.Severity >= DiagnosticSeverity.Warning)
            .Select(diagnostic => diagnostic.ToString());
}
