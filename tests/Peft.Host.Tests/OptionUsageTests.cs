using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Peft.Generators;

namespace Peft.Host.Tests;

/// <summary>
/// Every option is either used or rejected: each property of every [HyperParameters] record in the product (host,
/// engine parts, contracts, plugins, benchmarks) must be read somewhere outside its own record. Found with Roslyn's
/// semantic model over the sources (the generator run on them), so a same-named member of another type does not count.
/// </summary>
public sealed class OptionUsageTests
{
    private static readonly string[] ProductFolders = ["abstractions", "host", "plugins"];

    [Fact]
    public void Every_bound_option_is_read_by_the_code_it_configures()
    {
        var compilation = Compile();
        var records = compilation.SyntaxTrees
            .SelectMany(t => t.GetRoot().DescendantNodes().OfType<TypeDeclarationSyntax>().Select(d => (Tree: t, Declaration: d)))
            .Select(x => compilation.GetSemanticModel(x.Tree).GetDeclaredSymbol(x.Declaration))
            .OfType<INamedTypeSymbol>()
            .Where(t => t.GetAttributes().Any(a => a.AttributeClass?.ToDisplayString() == "Peft.Configuration.HyperParametersAttribute"))
            .Distinct(SymbolEqualityComparer.Default).Cast<INamedTypeSymbol>()
            .ToList();
        Assert.True(records.Count >= 10, $"found only {records.Count} options records: {string.Join(", ", records.Select(r => r.Name))}");

        var options = records.SelectMany(r => r.GetMembers().OfType<IPropertySymbol>()
                .Where(p => p.DeclaredAccessibility == Accessibility.Public && !p.IsStatic && p.SetMethod is not null && !p.IsImplicitlyDeclared)
                .Select(p => (Record: r, Property: p)))
            .ToList();
        var read = new HashSet<ISymbol>(SymbolEqualityComparer.Default);
        foreach (var tree in compilation.SyntaxTrees)
        {
            var model = compilation.GetSemanticModel(tree);
            foreach (var name in tree.GetRoot().DescendantNodes().OfType<IdentifierNameSyntax>())
            {
                if (model.GetSymbolInfo(name).Symbol is not IPropertySymbol property) continue;
                var original = property.OriginalDefinition;
                // A use inside the record itself (its validation, generated binding) is not a use by the code it configures.
                var inside = name.Ancestors().OfType<TypeDeclarationSyntax>()
                    .Any(t => SymbolEqualityComparer.Default.Equals(model.GetDeclaredSymbol(t), original.ContainingType));
                // Initialising the option (new XOptions { Epochs = 3 }) is writing it, not reading it.
                var written = name.Parent is AssignmentExpressionSyntax assignment && assignment.Left == name
                    && assignment.Parent is InitializerExpressionSyntax;
                if (!inside && !written) read.Add(original);
            }
        }
        var unused = options.Where(o => !read.Contains(o.Property)).Select(o => $"{o.Record.Name}.{o.Property.Name}").ToList();
        Assert.True(unused.Count == 0, "options bound and validated but never read: " + string.Join(", ", unused));
    }

    private static CSharpCompilation Compile()
    {
        var root = PeftProcess.RepoRoot;
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        var trees = ProductFolders
            .SelectMany(f => Directory.EnumerateFiles(Path.Combine(root, f), "*.cs", SearchOption.AllDirectories))
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !p.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .Select(p => CSharpSyntaxTree.ParseText(File.ReadAllText(p), parse, p))
            .Append(CSharpSyntaxTree.ParseText(ImplicitUsings, parse, "ImplicitUsings.g.cs"))
            .ToList();
        var references = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Concat(Directory.EnumerateFiles(AppContext.BaseDirectory, "*.dll"))
            .Where(p => !Path.GetFileName(p).StartsWith("Peft.", StringComparison.Ordinal) && Path.GetFileName(p) is not "peft.dll" and not "peft-bench.dll")
            .DistinctBy(Path.GetFileName)
            .Select(p => (MetadataReference)MetadataReference.CreateFromFile(p));
        Compilation compilation = CSharpCompilation.Create("PeftProduct", trees, references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));
        CSharpGeneratorDriver.Create(new HyperParametersGenerator()).RunGeneratorsAndUpdateCompilation(compilation, out compilation, out _);
        return (CSharpCompilation)compilation;
    }

    // What ImplicitUsings adds to every project of the repository.
    private const string ImplicitUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Threading;
        global using System.Threading.Tasks;
        """;
}
