using Peft.Host.Hosting;
using Peft.Host.Verbs;

namespace Peft.Host;

/// <summary>
/// `peft VERB [--config FILE] [Key=Value ...]`. Configuration layers, later wins: appsettings.json,
/// the --config file, PEFT_* environment variables, then Key=Value overrides (e.g. Run:Threads=2).
/// The benchmarks are a program of their own (host/Peft.Bench, `peft-bench`).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var root = new System.CommandLine.RootCommand("Peft: parameter-efficient fine-tuning of Vision Transformers with visual prompts.");
        root.Subcommands.Add(VerbCommands.Create<TrainVerb>("train", "Train Method:Name on the Backbone and Data, evaluate, and report.", needsMethod: true));
        root.Subcommands.Add(VerbCommands.Create<EvalVerb>("eval", "Evaluate an adapter (Eval:Adapter, default: the train run's) on the test split.", needsMethod: true));
        root.Subcommands.Add(VerbCommands.Create<PretrainVerb>("pretrain", "Pre-train the Backbone from scratch on the Pretrain classes (cached)."));
        root.Subcommands.Add(VerbCommands.WithFolder<RunsVerb>("runs", "List the runs under Run:OutputDir, or under DIR: method, options, parameters, test top-1, status.",
            "dir", "Runs:Dir"));
        root.Subcommands.Add(VerbCommands.WithFlag<MethodsVerb>("methods", "List the methods (built-in baselines and plugins).",
            "--describe", "Print each method's options table.", "Methods:Describe=true"));
        root.Subcommands.Add(VerbCommands.Create<InfoVerb>("info", "Engine self-check: TorchSharp and libtorch versions, threads, CPU libraries, CUDA devices, measured GEMM GFLOP/s."));
        root.Subcommands.Add(VerbCommands.Create<SchemaVerb>("schema", $"Write the JSON schema of the configuration (Schema:Output, default {OptionsCatalog.SchemaFileName})."));
        return root.Parse(args).Invoke();
    }
}
