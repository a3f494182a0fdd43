using Microsoft.CodeAnalysis;

namespace Peft.Generators.Tests.Generator;

public class DiagnosticTests
{
    [Fact]
    public void PEFT001_a_type_that_is_not_partial()
    {
        var (diagnostic, source) = SingleDiagnostic("""
            [HyperParameters]
            public record Options { public int Rank { get; init; } }
            """);

        AssertDiagnostic(diagnostic, source, "PEFT001", "Options", "'Options' must be declared partial, and so must every type containing it, for [HyperParameters] to generate code into it");
    }

    [Fact]
    public void PEFT001_a_containing_type_that_is_not_partial()
    {
        var (diagnostic, source) = SingleDiagnostic("""
            public static class Lora
            {
                [HyperParameters]
                public partial record Options { public int Rank { get; init; } }
            }
            """);

        AssertDiagnostic(diagnostic, source, "PEFT001", "Options", "'Options' must be declared partial, and so must every type containing it, for [HyperParameters] to generate code into it");
    }

    [Theory]
    [InlineData("System.DateTime", "DateTime")]
    [InlineData("System.Collections.Generic.Dictionary<string, int>", "Dictionary<string, int>")]
    [InlineData("System.Collections.Generic.List<int?>", "List<int?>")]
    [InlineData("int[][]", "int[][]")]
    [InlineData("object", "object")]
    public void PEFT002_an_unsupported_property_type(string type, string display)
    {
        var (diagnostic, source) = SingleDiagnostic($$"""
            [HyperParameters]
            public partial record Options { public {{type}} Value { get; init; } = default!; }
            """);

        AssertDiagnostic(diagnostic, source, "PEFT002", "Value",
            $"Property 'Value' has type '{display}', which cannot be bound from configuration; use a primitive, string, enum, nullable, array or list of those, or a [HyperParameters] type");
    }

    [Theory]
    [InlineData("[Range(1, 10)]", "string", "Range(1, 10)", "[Range] on property 'Value': it applies to numeric properties, not 'string'")]
    [InlineData("[Range(10, 1)]", "int", "Range(10, 1)", "[Range] on property 'Value': the minimum 10 is greater than the maximum 1")]
    [InlineData("[Range(0.5, 2)]", "int", "Range(0.5, 2)", "[Range] on property 'Value': 0.5 is not a whole number, as 'int' requires")]
    [InlineData("[Range(0, 300)]", "byte", "Range(0, 300)", "[Range] on property 'Value': 300 is outside the range of 'byte'")]
    [InlineData("[Range(1, 10)]", "int[]", "Range(1, 10)", "[Range] on property 'Value': it applies to numeric properties, not 'int[]'")]
    [InlineData("[AllowedValues(1, 2)]", "string", "AllowedValues(1, 2)", "[AllowedValues] on property 'Value': 1 is not a string")]
    [InlineData("[AllowedValues(\"Up\")]", "Direction", "AllowedValues(\"Up\")", "[AllowedValues] on property 'Value': 'Up' is not a member of 'Direction'")]
    [InlineData("[AllowedValues(1, 2.5)]", "int", "AllowedValues(1, 2.5)", "[AllowedValues] on property 'Value': 2.5 is not a whole number, as 'int' requires")]
    [InlineData("[AllowedValues(true)]", "bool", "AllowedValues(true)", "[AllowedValues] on property 'Value': it applies to string, enum and numeric properties, not 'bool'")]
    public void PEFT003_an_attribute_that_does_not_fit_the_property(string attribute, string type, string span, string message)
    {
        var (diagnostic, source) = SingleDiagnostic($$"""
            public enum Direction { Left, Right }

            [HyperParameters]
            public partial record Options
            {
                {{attribute}}
                public {{type}} Value { get; init; } = default!;
            }
            """);

        AssertDiagnostic(diagnostic, source, "PEFT003", span, message);
    }

    [Fact]
    public void PEFT004_properties_that_differ_only_by_case()
    {
        var (diagnostic, source) = SingleDiagnostic("""
            [HyperParameters]
            public partial class Options
            {
                public int Rank { get; set; }
                public int rank { get; set; }
            }
            """);

        AssertDiagnostic(diagnostic, source, "PEFT004", "rank", "Properties 'Rank' and 'rank' differ only by case and would bind the same configuration key");
    }

    [Theory]
    [InlineData("public partial record Options(int Rank);")]
    [InlineData("public partial class Options { public Options(int rank) => Rank = rank; public int Rank { get; set; } }")]
    public void PEFT005_a_type_without_a_parameterless_constructor(string declaration)
    {
        var (diagnostic, source) = SingleDiagnostic("[HyperParameters]\n" + declaration);

        AssertDiagnostic(diagnostic, source, "PEFT005", "Options", "'Options' needs a parameterless constructor (and no primary constructor): defaults come from 'new Options()'");
    }

    [Theory]
    [InlineData("[HyperParameters] public partial record Options<T> { public int Rank { get; init; } }")]
    [InlineData("public partial class Outer { [HyperParameters] private partial record Options { public int Rank { get; init; } } }")]
    public void PEFT006_a_generic_or_private_type(string declaration)
    {
        var (diagnostic, source) = SingleDiagnostic(declaration);

        AssertDiagnostic(diagnostic, source, "PEFT006", "Options", "'Options' must not be generic, nor nested in a generic type, nor private or protected");
    }

    [Fact]
    public void PEFT007_required_on_a_non_nullable_value_type_is_a_warning_and_code_is_still_generated()
    {
        var run = GeneratorHarness.Run("""
            using Peft.Configuration;

            [HyperParameters]
            public partial record Options { [Required] public int Rank { get; init; } }
            """);

        var diagnostic = Assert.Single(run.GeneratorDiagnostics);
        var source = run.Output.SyntaxTrees.First().ToString();
        Assert.Equal(DiagnosticSeverity.Warning, diagnostic.Severity);
        AssertDiagnostic(diagnostic, source, "PEFT007", "Rank", "[Required] on property 'Rank' has no effect because a 'int' always has a value; make it nullable to require it");
        Assert.Contains(run.Result.GeneratedSources, source => source.HintName == "Options.g.cs");
    }

    [Fact]
    public void A_type_with_errors_gets_no_generated_code()
    {
        var run = GeneratorHarness.Run("""
            [Peft.Configuration.HyperParameters]
            public record Options { public int Rank { get; init; } }
            """);

        Assert.Single(run.GeneratorDiagnostics);
        Assert.Empty(run.Result.GeneratedSources);
    }

    private static (Diagnostic Diagnostic, string Source) SingleDiagnostic(string declarations)
    {
        var source = "using Peft.Configuration;\n\n" + declarations;
        var run = GeneratorHarness.Run(source);
        return (Assert.Single(run.GeneratorDiagnostics), source);
    }

    /// <summary>
    /// Checks the id, the message and that the diagnostic points at <paramref name="spanText"/> in the input.
    /// (The generator recreates locations from plain data, so they are file locations rather than tree locations.)
    /// </summary>
    private static void AssertDiagnostic(Diagnostic diagnostic, string source, string id, string spanText, string message)
    {
        Assert.Equal(id, diagnostic.Id);
        Assert.Equal(message, diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal("Source0.cs", diagnostic.Location.GetLineSpan().Path);
        var span = diagnostic.Location.SourceSpan;
        Assert.Equal(spanText, source.Substring(span.Start, span.Length));
    }
}
