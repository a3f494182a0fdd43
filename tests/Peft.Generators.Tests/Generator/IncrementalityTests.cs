using Microsoft.CodeAnalysis;
using Steps = Peft.Generators.HyperParametersGenerator.Steps;

namespace Peft.Generators.Tests.Generator;

public class IncrementalityTests
{
    private const string Source = """
        using Peft.Configuration;

        namespace Sample;

        [HyperParameters("Trainer")]
        public partial record TrainerOptions
        {
            [Range(1, 100)]
            public int Epochs { get; init; } = 3;

            public Nested Inner { get; init; } = new();

            public int Rank { get; init; } = 3;
        }

        [HyperParameters]
        public partial class Nested
        {
            public string Name { get; set; } = "x";

            [Required] // PEFT007, so the diagnostics step has an output to track
            public int Count { get; set; }
        }
        """;

    private static readonly string[] TrackedSteps = [Steps.Parse, Steps.Models, Steps.Diagnostics, Steps.Registration];

    [Fact]
    public void Adding_an_unrelated_syntax_tree_leaves_every_step_cached()
    {
        var (first, second) = RunTwice(compilation =>
            compilation.AddSyntaxTrees(GeneratorHarness.Tree("namespace Sample; public class Unrelated { public int X; }", "Unrelated.cs")));

        Assert.All(TrackedSteps, step => Assert.Contains(step, first.TrackedSteps.Keys));
        AssertReasons(second, IncrementalStepRunReason.Cached, IncrementalStepRunReason.Unchanged);
        Assert.All(second.TrackedOutputSteps.SelectMany(step => step.Value).SelectMany(run => run.Outputs),
            output => Assert.Equal(IncrementalStepRunReason.Cached, output.Reason));
    }

    [Fact]
    public void An_edit_in_the_record_that_does_not_change_its_model_leaves_the_models_unchanged()
    {
        var (_, second) = RunTwice(compilation => Replace(compilation, "public int Rank { get; init; } = 3;",
            "public int Rank { get; init; } = 3;\n\n    // A comment, and a method the generator ignores.\n    public override string ToString() => \"x\";"));

        // The edited declaration is parsed again, but yields an equal model, so nothing downstream is redone.
        Assert.Contains(second.TrackedSteps[Steps.Parse].SelectMany(run => run.Outputs), output => output.Reason == IncrementalStepRunReason.Unchanged);
        Assert.All(new[] { Steps.Models, Steps.Registration }.SelectMany(step => second.TrackedSteps[step]).SelectMany(run => run.Outputs),
            output => Assert.True(output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged, output.Reason.ToString()));
    }

    [Fact]
    public void Changing_a_rule_modifies_the_model_and_regenerates_only_that_type()
    {
        var (_, second) = RunTwice(compilation => Replace(compilation, "[Range(1, 100)]", "[Range(1, 50)]"));

        var models = second.TrackedSteps[Steps.Models].SelectMany(run => run.Outputs).ToList();
        Assert.Contains(models, output => output.Reason == IncrementalStepRunReason.Modified);
        Assert.Contains(models, output => output.Reason is IncrementalStepRunReason.Cached or IncrementalStepRunReason.Unchanged);
        Assert.Contains("Range<int>(issues, global::Peft.Configuration.ConfigPath.Combine(path, \"Epochs\"), Epochs, 1, 50);",
            second.GeneratedSources.Single(source => source.HintName == "Sample.TrainerOptions.g.cs").SourceText.ToString(), StringComparison.Ordinal);
    }

    private static (GeneratorRunResult First, GeneratorRunResult Second) RunTwice(Func<Compilation, Compilation> edit)
    {
        var compilation = GeneratorHarness.Compile(Source);
        var driver = GeneratorHarness.CreateDriver().RunGenerators(compilation);
        var first = driver.GetRunResult().Results.Single();
        driver = driver.RunGenerators(edit(compilation));
        return (first, driver.GetRunResult().Results.Single());
    }

    private static Compilation Replace(Compilation compilation, string oldText, string newText)
    {
        var tree = compilation.SyntaxTrees.Single();
        var text = tree.GetText().ToString();
        Assert.Contains(oldText, text, StringComparison.Ordinal);
        return compilation.ReplaceSyntaxTree(tree, tree.WithChangedText(Microsoft.CodeAnalysis.Text.SourceText.From(text.Replace(oldText, newText, StringComparison.Ordinal))));
    }

    private static void AssertReasons(GeneratorRunResult result, params IncrementalStepRunReason[] allowed)
    {
        foreach (var step in TrackedSteps)
        {
            var outputs = result.TrackedSteps[step].SelectMany(run => run.Outputs).ToList();
            Assert.All(outputs, output => Assert.Contains(output.Reason, allowed));
        }
    }
}
