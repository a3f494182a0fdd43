using Peft.Configuration;

namespace Peft.Generators.Tests;

public class ContentHashTests
{
    private static MethodOptions Method(params string[] args) =>
        HyperParameters.Load<MethodOptions>(TestConfig.CommandLine(["--Method:Name=lora", .. args])).Value;

    [Fact]
    public void Equal_values_have_equal_hashes()
    {
        var fromCommandLine = Method("--Method:Options:PromptTokens=30");
        var fromJson = HyperParameters.Load<MethodOptions>(
            TestConfig.Json("""{ "Method": { "Name": "lora", "Options": { "PromptTokens": "30" } } }""")).Value;

        Assert.NotSame(fromCommandLine, fromJson);
        Assert.Equal(fromCommandLine.ContentHash(), fromJson.ContentHash());
    }

    [Theory]
    [InlineData("--Method:Options:PromptTokens=31")]
    [InlineData("--Method:Options:Dropout=0.10000000000000002")]
    [InlineData("--Method:Options:TargetModules=v_proj,q_proj")]
    [InlineData("--Method:Options:InitText=")]
    public void Changing_one_value_changes_the_hash(string change)
    {
        Assert.NotEqual(Method("--Method:Options:PromptTokens=30").ContentHash(), Method("--Method:Options:PromptTokens=30", change).ContentHash());
    }

    [Fact]
    public void The_canonical_text_is_sorted_invariant_json()
    {
        var method = Method();

        Assert.Equal(
            """{"Name":"lora","Options":{"Dropout":0.1,"Init":"random","InitText":null,"PromptTokens":8,"TargetModules":["q_proj","v_proj"]}}""",
            ContentHashing.CanonicalText(method));
    }

    [Fact]
    public void The_hash_of_a_fixed_record_is_stable_across_runs()
    {
        var trainer = new TrainerOptions { Stages = [new StageOptions { Name = "main" }] };

        Assert.Equal(
            """{"Betas":[0.9,0.999],"Epochs":3,"EvalBatch":8,"EvalSteps":[],"GradientAccumulation":null,"LearningRate":0.0001"""
            + ""","LogEvery":10,"MaxSteps":-1,"MaxTokens":1000000,"Priority":0,"SavesKept":3,"Schedule":"Linear","Seed":42"""
            + ""","Separator":",","Shuffle":true,"Stages":[{"Epochs":1,"Name":"main"}],"WarmupSchedule":null,"WeightDecay":0.01,"Workers":2}""",
            ContentHashing.CanonicalText(trainer));
        Assert.Equal(ContentHashing.HashText(ContentHashing.CanonicalText(trainer)), trainer.ContentHash());
        Assert.Equal("9f511d2f45abb449", trainer.ContentHash());
    }

    [Fact]
    public void HashText_is_the_truncated_sha256_hex()
    {
        // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
        Assert.Equal("ba7816bf8f01cfea", ContentHashing.HashText("abc"));
    }
}
