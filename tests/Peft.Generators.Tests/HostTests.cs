using Peft.Configuration;

namespace Peft.Generators.Tests;

/// <summary>How a host uses records it only knows through a generic parameter, a factory or a Type.</summary>
public class HostTests
{
    [Fact]
    public void The_registry_enumerates_every_generated_record_of_an_assembly()
    {
        var infos = HyperParametersRegistry.In(typeof(HostTests).Assembly);

        Assert.Equal(
            [typeof(MethodOptions), typeof(PromptTuningOptions), typeof(StageOptions), typeof(TrainerOptions)],
            infos.Select(info => info.Type));
        Assert.Equal(["Method", "Method:Options", null, "Trainer"], infos.Select(info => info.SectionName));
    }

    [Fact]
    public void A_host_binds_and_validates_a_record_known_only_by_its_type()
    {
        var info = HyperParametersRegistry.Find(typeof(PromptTuningOptions));
        Assert.NotNull(info);

        var result = info.Load(TestConfig.CommandLine("--Method:Options:PromptTokens=2000", "--Method:Options:Dropout=0.3"));

        var options = Assert.IsType<PromptTuningOptions>(result.Value);
        Assert.Equal(0.3, options.Dropout);
        Assert.Equal(["Method:Options:PromptTokens must be between 1 and 1000 (found 2000)"], result.Issues.Messages());
        Assert.Equal(PromptTuningOptions.Describe(), info.Describe());
    }

    [Fact]
    public void A_factory_hands_the_host_a_handle_and_the_host_chooses_the_section()
    {
        var info = HyperParametersInfo.Of<StageOptions>();

        var result = info.Load(TestConfig.CommandLine("--Run:Stage:Name=warmup", "--Run:Stage:Epocs=2"), "Run:Stage");

        Assert.Equal(new StageOptions { Name = "warmup" }, result.Value);
        Assert.Equal(["Run:Stage:Epocs is not a known option; did you mean Epochs?"], result.Issues.Messages());
    }

    [Fact]
    public void Types_that_are_not_generated_records_are_not_found()
    {
        Assert.Null(HyperParametersRegistry.Find(typeof(HostTests)));
    }
}
