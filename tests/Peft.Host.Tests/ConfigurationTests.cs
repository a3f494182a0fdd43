using Microsoft.Extensions.Configuration;
using Peft.Host.Hosting;

namespace Peft.Host.Tests;

public class ConfigurationTests
{
    [Fact]
    public void Committed_schema_matches_the_options_it_describes()
    {
        var committed = File.ReadAllText(Path.Combine(PeftProcess.RepoRoot, OptionsCatalog.SchemaFileName));
        var current = PeftHost.Catalog().JsonSchema();
        Assert.True(committed == current,
            $"{OptionsCatalog.SchemaFileName} is stale: regenerate it with `peft schema` from the repository root");
    }

    [Fact]
    public void Appsettings_references_the_schema_and_is_valid()
    {
        var root = PeftProcess.RepoRoot;
        var configuration = new ConfigurationBuilder().AddJsonFile(Path.Combine(root, "appsettings.json")).Build();
        Assert.Equal("./" + OptionsCatalog.SchemaFileName, configuration["$schema"]);
        Assert.Empty(PeftHost.Catalog().Validate(configuration, includeMethod: false));
    }

    [Fact]
    public void Invalid_overrides_exit_2_listing_every_problem_without_a_stack_trace()
    {
        var r = PeftProcess.Run(Path.GetTempPath(), "info", "Run:Thredas=3", "Trainer:Epochs=abc", "Backbone:Heads=5",
            "Backbone:Dim=64", "Trainer:BatchSize=0");
        Assert.Equal(ExitCodes.InvalidConfiguration, r.ExitCode);
        Assert.Contains("invalid configuration (4 problems)", r.StdErr);
        Assert.Contains("Run:Thredas is not a known option; did you mean Threads?", r.StdErr);
        Assert.Contains("Trainer:Epochs must be an integer (found 'abc')", r.StdErr);
        Assert.Contains("Backbone:Heads must divide Backbone:Dim (found 5 heads for 64)", r.StdErr);
        Assert.Contains("Trainer:BatchSize must be between 1 and 4096 (found 0)", r.StdErr);
        Assert.DoesNotContain("   at ", r.StdErr);
    }

    [Fact]
    public void A_cuda_device_without_cuda_exits_2_naming_run_device()
    {
        var r = PeftProcess.Run(Path.GetTempPath(), "info", "Run:Device=cuda");
        Assert.Equal(ExitCodes.InvalidConfiguration, r.ExitCode);
        Assert.Contains("Run:Device is 'cuda', but this build links the CPU-only libtorch", r.StdErr);
        Assert.Contains("-p:TorchBackend=cuda", r.StdErr);
        var bad = PeftProcess.Run(Path.GetTempPath(), "info", "Run:Device=gpu");
        Assert.Equal(ExitCodes.InvalidConfiguration, bad.ExitCode);
        Assert.Contains("Run:Device must be cpu, cuda, cuda:N or auto (found 'gpu')", bad.StdErr);
    }

    [Fact]
    public void A_misspelt_choice_is_an_error_with_a_suggestion()
    {
        var r = PeftProcess.Run(Path.GetTempPath(), "info", "Trainer:Optimizer=adamx", "Data:Format=image-folder", "Backbone:Kind=MAE");
        Assert.Equal(ExitCodes.InvalidConfiguration, r.ExitCode);
        Assert.Contains("invalid configuration (1 problem)", r.StdErr); // image-folder and MAE name members
        Assert.Contains("Trainer:Optimizer must be one of sgd, adamw (found 'adamx'); did you mean adamw?", r.StdErr);
    }

    [Fact]
    public void Config_file_and_environment_layers_are_validated_too()
    {
        var dir = Directory.CreateTempSubdirectory("peft-config-");
        try
        {
            var file = Path.Combine(dir.FullName, "bad.json");
            File.WriteAllText(file, """{ "Data": { "Format": "tfrecord" } }""");
            var r = PeftProcess.Run(dir.FullName, "info", "--config", file);
            Assert.Equal(ExitCodes.InvalidConfiguration, r.ExitCode);
            Assert.Contains("Data:Format must be one of", r.StdErr);
            Assert.Contains("(found 'tfrecord')", r.StdErr);

            var missing = PeftProcess.Run(dir.FullName, "info", "--config", Path.Combine(dir.FullName, "nope.json"));
            Assert.Equal(ExitCodes.InvalidConfiguration, missing.ExitCode);
            Assert.Contains("configuration file not found", missing.StdErr);

            var malformed = PeftProcess.Run(dir.FullName, "info", "NotAnOverride");
            Assert.Equal(ExitCodes.InvalidConfiguration, malformed.ExitCode);
            Assert.Contains("is not of the form Key=Value", malformed.StdErr);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void Schema_verb_writes_the_schema_file()
    {
        var dir = Directory.CreateTempSubdirectory("peft-schema-");
        try
        {
            var r = PeftProcess.Run(dir.FullName, "schema");
            Assert.Equal(0, r.ExitCode);
            var written = File.ReadAllText(Path.Combine(dir.FullName, OptionsCatalog.SchemaFileName));
            Assert.Equal(PeftHost.Catalog().JsonSchema(), written);
            Assert.Contains("\"Trainer\"", written);
            Assert.Contains("\"maximum\": 4096", written);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
