using Microsoft.Extensions.Configuration;
using Peft.Configuration;

namespace Peft.Generators.Tests;

public class BindingTests
{
    [Fact]
    public void Json_values_overwrite_defaults_and_absent_keys_keep_them()
    {
        var config = TestConfig.Json("""
            { "Method": { "Name": "prompt-tuning", "Options": { "PromptTokens": 50, "Dropout": 0.25 } } }
            """);

        var result = HyperParameters.Load<MethodOptions>(config);

        Assert.Empty(result.Issues);
        Assert.Equal("prompt-tuning", result.Value.Name);
        Assert.Equal(50, result.Value.Options.PromptTokens);
        Assert.Equal(0.25, result.Value.Options.Dropout);
        Assert.Equal("random", result.Value.Options.Init);
        Assert.Equal(["q_proj", "v_proj"], result.Value.Options.TargetModules);
    }

    [Fact]
    public void Nested_records_are_bound_onto_the_outer_initializer_value()
    {
        // MethodOptions initialises Options with PromptTokens = 8 (the nested type's own default is 20).
        var config = TestConfig.Json("""{ "Method": { "Name": "lora", "Options": { "Dropout": 0.5 } } }""");

        var options = HyperParameters.Load<MethodOptions>(config).Value.Options;

        Assert.Equal(8, options.PromptTokens);
        Assert.Equal(0.5, options.Dropout);
    }

    [Fact]
    public void Keys_match_property_names_ignoring_case()
    {
        var config = TestConfig.Json("""{ "method": { "name": "lora", "OPTIONS": { "prompttokens": 7 } } }""");

        var result = HyperParameters.Load<MethodOptions>(config);

        Assert.Empty(result.Issues);
        Assert.Equal(7, result.Value.Options.PromptTokens);
    }

    [Fact]
    public void A_wrong_type_is_an_issue_and_keeps_the_default()
    {
        var config = TestConfig.Json("""{ "Method": { "Name": "lora", "Options": { "PromptTokens": "abc" } } }""");

        var result = HyperParameters.Load<MethodOptions>(config);

        var issue = Assert.Single(result.Issues);
        Assert.Equal("Method:Options:PromptTokens must be an integer (found 'abc')", issue.Message);
        Assert.Equal(("Method:Options:PromptTokens", ConfigRules.Type, "'abc'"), (issue.Path, issue.Rule, issue.Found));
        Assert.Equal(8, result.Value.Options.PromptTokens);
    }

    [Fact]
    public void Unknown_keys_are_reported_with_a_did_you_mean_suggestion()
    {
        var config = TestConfig.Json("""{ "Method": { "Name": "lora", "Options": { "PromtTokens": 5, "Colour": "red" } } }""");

        var result = HyperParameters.Load<MethodOptions>(config);

        Assert.Equal(
            [
                "Method:Options:Colour is not a known option",
                "Method:Options:PromtTokens is not a known option; did you mean PromptTokens?",
            ],
            result.Issues.Messages());
        Assert.All(result.Issues, issue => Assert.Equal(ConfigRules.Unknown, issue.Rule));
    }

    [Fact]
    public void Command_line_overrides_json_in_both_argument_styles()
    {
        var config = new ConfigurationBuilder()
            .AddJsonStream(new MemoryStream("""{ "Method": { "Name": "lora", "Options": { "PromptTokens": 50 } } }"""u8.ToArray()))
            .AddCommandLine(["--Method:Options:PromptTokens=5", "Method:Options:Init=text", "--Method:Options:InitText", "Hello"])
            .Build();

        var result = HyperParameters.Load<MethodOptions>(config);

        Assert.Empty(result.Issues);
        Assert.Equal(5, result.Value.Options.PromptTokens);
        Assert.Equal("text", result.Value.Options.Init);
        Assert.Equal("Hello", result.Value.Options.InitText);
    }

    [Fact]
    public void Bad_command_line_values_are_reported_with_their_paths()
    {
        var config = TestConfig.CommandLine("--Trainer:Shuffle=maybe", "--Trainer:Schedule=cosin", "--Trainer:Workers=300", "--Trainer:Separator=ab");

        var result = HyperParameters.Load<TrainerOptions>(config);

        Assert.Equal(
            [
                "Trainer:Shuffle must be true or false (found 'maybe')",
                "Trainer:Workers must be an integer between 0 and 255 (found '300')",
                "Trainer:Separator must be a single character (found 'ab')",
                "Trainer:Schedule must be one of constant, linear, cosine (found 'cosin'); did you mean cosine?",
            ],
            result.Issues.Messages());
    }

    [Fact]
    public void Environment_variables_with_a_prefix_bind_and_report_bad_values()
    {
        // A prefix unique to this test keeps it independent of tests running in parallel.
        var prefix = $"PEFT_TEST_{Guid.NewGuid():N}_";
        var variables = new Dictionary<string, string>
        {
            [prefix + "Method__Name"] = "lora",
            [prefix + "Method__Options__PromptTokens"] = "64",
            [prefix + "Method__Options__Dropout"] = "lots",
        };
        try
        {
            foreach (var (name, value) in variables)
            {
                Environment.SetEnvironmentVariable(name, value);
            }

            var config = new ConfigurationBuilder().AddEnvironmentVariables(prefix).Build();
            var result = HyperParameters.Load<MethodOptions>(config);

            Assert.Equal(64, result.Value.Options.PromptTokens);
            Assert.Equal(0.1, result.Value.Options.Dropout);
            Assert.Equal(["Method:Options:Dropout must be a number (found 'lots')"], result.Issues.Messages());
        }
        finally
        {
            foreach (var name in variables.Keys)
            {
                Environment.SetEnvironmentVariable(name, null);
            }
        }
    }

    [Fact]
    public void Every_scalar_kind_is_parsed_with_the_invariant_culture()
    {
        var config = TestConfig.Json("""
            {
              "Trainer": {
                "Epochs": 4, "MaxSteps": 9000000000, "LearningRate": "2.5e-5", "WeightDecay": "0.125",
                "Shuffle": "False", "Workers": 255, "Priority": -3, "LogEvery": -20, "SavesKept": 65535,
                "EvalBatch": 4000000000, "MaxTokens": 18446744073709551615, "Separator": ";",
                "Schedule": "COSINE", "WarmupSchedule": "constant", "Seed": "", "GradientAccumulation": 16
              }
            }
            """);

        var result = HyperParameters.Load<TrainerOptions>(config);
        var trainer = result.Value;

        Assert.Empty(result.Issues);
        Assert.Equal(4, trainer.Epochs);
        Assert.Equal(9_000_000_000L, trainer.MaxSteps);
        Assert.Equal(2.5e-5f, trainer.LearningRate);
        Assert.Equal(0.125m, trainer.WeightDecay);
        Assert.False(trainer.Shuffle);
        Assert.Equal((byte)255, trainer.Workers);
        Assert.Equal((sbyte)-3, trainer.Priority);
        Assert.Equal((short)-20, trainer.LogEvery);
        Assert.Equal((ushort)65535, trainer.SavesKept);
        Assert.Equal(4_000_000_000u, trainer.EvalBatch);
        Assert.Equal(ulong.MaxValue, trainer.MaxTokens);
        Assert.Equal(';', trainer.Separator);
        Assert.Equal(LrSchedule.Cosine, trainer.Schedule);
        Assert.Equal(LrSchedule.Constant, trainer.WarmupSchedule);
        Assert.Null(trainer.Seed);
        Assert.Equal(16, trainer.GradientAccumulation);
    }

    [Fact]
    public void Absent_keys_keep_the_initializer_defaults()
    {
        var trainer = HyperParameters.Load<TrainerOptions>(TestConfig.Json("{}")).Value;

        Assert.Equal(3, trainer.Epochs);
        Assert.Equal(42, trainer.Seed);
        Assert.Null(trainer.WarmupSchedule);
        Assert.Equal(LrSchedule.Linear, trainer.Schedule);
        Assert.Equal([0.9, 0.999], trainer.Betas);
        Assert.Empty(trainer.Stages);
    }

    [Fact]
    public void Collections_bind_from_json_arrays_and_comma_separated_values()
    {
        var config = new ConfigurationBuilder()
            .AddJsonStream(new MemoryStream("""{ "Trainer": { "EvalSteps": [100, 200, 300] } }"""u8.ToArray()))
            .AddCommandLine(["--Trainer:Betas=0.8, 0.95"])
            .Build();

        var trainer = HyperParameters.Load<TrainerOptions>(config).Value;

        Assert.Equal([100, 200, 300], trainer.EvalSteps);
        Assert.Equal([0.8, 0.95], trainer.Betas);
    }

    [Fact]
    public void Bad_collection_elements_are_reported_by_index()
    {
        var config = new ConfigurationBuilder()
            .AddJsonStream(new MemoryStream("""{ "Trainer": { "EvalSteps": [100, "x", 300] } }"""u8.ToArray()))
            .AddCommandLine(["--Trainer:Betas=0.8,high"])
            .Build();

        var result = HyperParameters.Load<TrainerOptions>(config);

        Assert.Equal(
            ["Trainer:EvalSteps:1 must be an integer (found 'x')", "Trainer:Betas:1 must be a number (found 'high')"],
            result.Issues.Messages());
        Assert.Equal([100, 300], result.Value.EvalSteps);
    }

    [Fact]
    public void Lists_of_nested_records_bind_each_element_from_its_own_defaults()
    {
        var config = TestConfig.Json("""{ "Trainer": { "Stages": [ { "Name": "warmup" }, { "Name": "main", "Epochs": 5 } ] } }""");

        var result = HyperParameters.Load<TrainerOptions>(config);

        Assert.Empty(result.Issues);
        Assert.Equal([new StageOptions { Name = "warmup", Epochs = 1 }, new StageOptions { Name = "main", Epochs = 5 }], result.Value.Stages);
    }

    [Fact]
    public void A_scalar_where_a_section_belongs_and_a_section_where_a_scalar_belongs_are_reported()
    {
        var config = TestConfig.Json("""{ "Method": { "Name": { "First": "lora" }, "Options": 5 } }""");

        var result = HyperParameters.Load<MethodOptions>(config);

        Assert.Equal(
            ["Method:Name must be a string (found a section)", "Method:Options must be a section (found '5')", "Method:Name is required"],
            result.Issues.Messages());
    }
}
