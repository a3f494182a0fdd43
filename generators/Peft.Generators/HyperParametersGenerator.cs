using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Peft.Generators;

/// <summary>
/// Implements Peft.Configuration.IHyperParameters&lt;TSelf&gt; for every partial record or class marked
/// [HyperParameters]: binding, validation, JSON schema, description table and content hash.
/// </summary>
[Generator(LanguageNames.CSharp)]
public sealed class HyperParametersGenerator : IIncrementalGenerator
{
    /// <summary>The tracking names of the pipeline steps, for incrementality tests.</summary>
    public static class Steps
    {
        public const string Parse = "HyperParameters.Parse";
        public const string Models = "HyperParameters.Models";
        public const string Diagnostics = "HyperParameters.Diagnostics";
        public const string Registration = "HyperParameters.Registration";
    }

    /// <inheritdoc />
    public void Initialize(IncrementalGeneratorInitializationContext context)
    {
        var parsed = context.SyntaxProvider
            .ForAttributeWithMetadataName(
                Parser.HyperParametersAttribute,
                static (node, _) => node is ClassDeclarationSyntax or RecordDeclarationSyntax,
                Parser.Parse)
            .WithTrackingName(Steps.Parse);

        var models = parsed
            .Where(static result => result.Model is not null)
            .Select(static (result, _) => result.Model!)
            .WithTrackingName(Steps.Models);

        var diagnostics = parsed
            .SelectMany(static (result, _) => result.Diagnostics)
            .WithTrackingName(Steps.Diagnostics);

        var registration = models
            .Select(static (model, _) => model.FullName)
            .Collect()
            .Select(static (names, _) => names.OrderBy(name => name, System.StringComparer.Ordinal).ToEquatableArray())
            .WithTrackingName(Steps.Registration);

        context.RegisterSourceOutput(diagnostics, static (output, diagnostic) => output.ReportDiagnostic(diagnostic.ToDiagnostic()));
        context.RegisterSourceOutput(models, static (output, model) => output.AddSource(model.FullName + ".g.cs", Emitter.Emit(model)));
        context.RegisterSourceOutput(registration, static (output, names) =>
        {
            if (!names.IsEmpty)
            {
                output.AddSource("HyperParametersRegistration.g.cs", Emitter.EmitRegistration(names));
            }
        });
    }
}
