using System.Text.Json;
using Peft.Configuration;

namespace Peft.Generators.Tests;

public class DescriptionTests
{
    [Fact]
    public void Describe_lists_name_type_default_range_and_description_with_nested_rows_flattened()
    {
        var rows = MethodOptions.Describe();

        Assert.Equal(
            [
                new OptionDescription("Name", "string?", "null", "one of 'prompt-tuning', 'lora'", null),
                new OptionDescription("Options:PromptTokens", "int", "8", "1..1000", "Number of virtual tokens."),
                new OptionDescription("Options:Init", "string", "'random'", "one of 'random', 'text'", "How the virtual tokens are initialised."),
                new OptionDescription("Options:InitText", "string?", "null", null, null),
                new OptionDescription("Options:Dropout", "double", "0.1", "0..1", null),
                new OptionDescription("Options:TargetModules", "List<string>", "['q_proj', 'v_proj']", null, null),
            ],
            rows);
    }

    [Fact]
    public void Describe_shows_enum_members_and_nested_collection_rows()
    {
        var rows = TrainerOptions.Describe().ToDictionary(row => row.Name);

        Assert.Equal(new OptionDescription("Schedule", "LrSchedule", "linear", "one of constant, linear, cosine", "Learning rate schedule."), rows["Schedule"]);
        Assert.Equal(new OptionDescription("LearningRate", "float", "0.0001", "0..1", null), rows["LearningRate"]);
        Assert.Equal(new OptionDescription("Stages:<n>:Epochs", "int", "1", "1..100", null), rows["Stages:<n>:Epochs"]);
    }

    [Fact]
    public void The_json_schema_describes_properties_bounds_defaults_and_nested_types()
    {
        using var schema = JsonDocument.Parse(MethodOptions.JsonSchema);
        var root = schema.RootElement;

        Assert.Equal("object", root.GetProperty("type").GetString());
        Assert.False(root.GetProperty("additionalProperties").GetBoolean());
        Assert.Equal(["Name"], root.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(
            ["prompt-tuning", "lora", null],
            root.GetProperty("properties").GetProperty("Name").GetProperty("enum").EnumerateArray().Select(e => e.GetString()));

        var options = root.GetProperty("properties").GetProperty("Options");
        Assert.Equal("Prompt tuning: trainable virtual tokens prepended to the input.", options.GetProperty("description").GetString());
        var promptTokens = options.GetProperty("properties").GetProperty("PromptTokens");
        Assert.Equal(
            """{"type":"integer","description":"Number of virtual tokens.","default":20,"minimum":1,"maximum":1000}""",
            promptTokens.GetRawText());
        Assert.Equal(
            """{"type":"array","items":{"type":"string"}}""",
            options.GetProperty("properties").GetProperty("TargetModules").GetRawText());
    }

    [Fact]
    public void Every_schema_is_valid_json()
    {
        foreach (var info in HyperParametersRegistry.In(typeof(DescriptionTests).Assembly))
        {
            using var schema = JsonDocument.Parse(info.JsonSchema);
            Assert.Equal(info.Type.Name, schema.RootElement.GetProperty("title").GetString());
        }
    }
}
