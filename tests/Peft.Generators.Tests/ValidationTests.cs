using Peft.Configuration;

namespace Peft.Generators.Tests;

public class ValidationTests
{
    [Fact]
    public void Out_of_range_values_name_the_path_the_bounds_and_the_value()
    {
        var config = TestConfig.CommandLine("--Method:Name=lora", "--Method:Options:PromptTokens=0", "--Method:Options:Dropout=1.5");

        var result = HyperParameters.Load<MethodOptions>(config);

        Assert.Equal(
            [
                "Method:Options:PromptTokens must be between 1 and 1000 (found 0)",
                "Method:Options:Dropout must be between 0 and 1 (found 1.5)",
            ],
            result.Issues.Messages());
        Assert.Equal(("range", "0"), (result.Issues[0].Rule, result.Issues[0].Found));
    }

    [Fact]
    public void Range_applies_to_nullable_numbers_only_when_they_have_a_value()
    {
        Assert.True(HyperParameters.Load<TrainerOptions>(TestConfig.CommandLine()).IsValid);

        var result = HyperParameters.Load<TrainerOptions>(TestConfig.CommandLine("--Trainer:GradientAccumulation=128", "--Trainer:LearningRate=2"));

        Assert.Equal(
            ["Trainer:LearningRate must be between 0 and 1 (found 2)", "Trainer:GradientAccumulation must be between 1 and 64 (found 128)"],
            result.Issues.Messages());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("--Method:Name=")]
    [InlineData("--Method:Name=   ")]
    public void A_missing_required_value_is_reported(string? argument)
    {
        var result = HyperParameters.Load<MethodOptions>(TestConfig.CommandLine(argument is null ? [] : [argument]));

        var issue = Assert.Single(result.Issues);
        Assert.Equal("Method:Name is required", issue.Message);
        Assert.Equal(ConfigRules.Required, issue.Rule);
    }

    [Fact]
    public void A_value_outside_the_allowed_set_is_reported()
    {
        var result = HyperParameters.Load<MethodOptions>(TestConfig.CommandLine("--Method:Name=ia3", "--Method:Options:Init=zeros"));

        Assert.Equal(
            [
                "Method:Name must be one of 'prompt-tuning', 'lora' (found 'ia3')",
                "Method:Options:Init must be one of 'random', 'text' (found 'zeros')",
            ],
            result.Issues.Messages());
    }

    [Fact]
    public void The_custom_hook_adds_cross_field_rules()
    {
        var result = HyperParameters.Load<MethodOptions>(TestConfig.CommandLine("--Method:Name=lora", "--Method:Options:Init=text"));

        var issue = Assert.Single(result.Issues);
        Assert.Equal(("Method:Options:InitText", ConfigRules.Custom), (issue.Path, issue.Rule));
        Assert.Equal("Method:Options:InitText is required when Init is 'text'", issue.Message);
    }

    [Fact]
    public void Nested_collections_are_validated_per_element()
    {
        var config = TestConfig.Json("""{ "Trainer": { "Stages": [ { "Epochs": 2 }, { "Name": "main", "Epochs": 0 } ] } }""");

        var result = HyperParameters.Load<TrainerOptions>(config);

        Assert.Equal(["Trainer:Stages:0:Name is required", "Trainer:Stages:1:Epochs must be between 1 and 100 (found 0)"], result.Issues.Messages());
    }

    [Fact]
    public void Every_problem_is_reported_at_once_and_nothing_throws()
    {
        var config = TestConfig.Json("""
            {
              "Method": {
                "Options": { "PromptTokens": 0, "Dropout": "high", "PromtTokens": 3, "Init": "zeros" },
                "Nmae": "lora"
              }
            }
            """);

        var result = HyperParameters.Load<MethodOptions>(config);

        Assert.False(result.IsValid);
        Assert.Equal(
            [
                "Method:Nmae is not a known option; did you mean Name?",
                "Method:Options:PromtTokens is not a known option; did you mean PromptTokens?",
                "Method:Options:Dropout must be a number (found 'high')",
                "Method:Name is required",
                "Method:Options:PromptTokens must be between 1 and 1000 (found 0)",
                "Method:Options:Init must be one of 'random', 'text' (found 'zeros')",
            ],
            result.Issues.Messages());
    }

    [Fact]
    public void GetValueOrThrow_throws_one_exception_carrying_every_issue()
    {
        var result = HyperParameters.Load<MethodOptions>(TestConfig.CommandLine("--Method:Options:PromptTokens=0"));

        var exception = Assert.Throws<ConfigurationException>(result.GetValueOrThrow);

        Assert.Equal(result.Issues, exception.Issues);
        Assert.Contains("  - Method:Name is required", exception.Message, StringComparison.Ordinal);
        Assert.Contains("  - Method:Options:PromptTokens must be between 1 and 1000 (found 0)", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_valid_configuration_returns_the_value()
    {
        var value = HyperParameters.Load<MethodOptions>(TestConfig.CommandLine("--Method:Name=lora")).GetValueOrThrow();

        Assert.Equal("lora", value.Name);
    }
}
