using System.CommandLine;
using Peft.Host.Hosting;
using Peft.Host.Verbs;

namespace Peft.Host;

/// <summary>
/// `peft VERB [--config FILE] [Key=Value ...]`. Configuration layers, later wins: appsettings.json,
/// the --config file, PEFT_* environment variables, then Key=Value overrides (e.g. Run:Threads=2).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var root = new RootCommand("Peft: parameter-efficient fine-tuning of Vision Transformers with visual prompts.");
        root.Subcommands.Add(VerbCommand<InfoVerb>("info", "Engine self-check: libtorch version, threads, BLAS in use, measured GEMM GFLOP/s."));
        var bench = VerbCommand<BenchVerb>("bench", "Engine benchmark: per-op overhead and GEMM/linear throughput of the binding against a C++ loop.");
        var quick = new Option<bool>("--quick") { Description = "Quick mode: no sweep, one seed (VtabBench:Quick=true)." };
        bench.Subcommands.Add(VerbCommand<Bench.VtabBenchVerb>("vtab", "Mini VTAB-1k accuracy benchmark on real data (VtabBench:*).", extra: quick,
            extraOverride: parse => parse.GetValue(quick) ? "VtabBench:Quick=true" : null));
        bench.Subcommands.Add(VerbCommand<Bench.SpeedBenchVerb>("speed", "Speed and memory against PyTorch eager on ViT-S/16 and ViT-B/16 (SpeedBench:*)."));
        bench.Subcommands.Add(VerbCommand<Bench.SpeedStepVerb>("step", "One speed measurement (peft bench speed runs it): SpeedBench:Model, SpeedBench:Method, Method:Name.",
            needsMethod: true));
        bench.Subcommands.Add(VerbCommand<Bench.PlainStepVerb>("plain", "The same training step as a plain TorchSharp loop (peft bench speed runs it): SpeedBench:Model, SpeedBench:Method."));
        root.Subcommands.Add(bench);
        root.Subcommands.Add(VerbCommand<TrainVerb>("train", "Train Method:Name on the Backbone and Data, evaluate, and report.", needsMethod: true));
        root.Subcommands.Add(VerbCommand<EvalVerb>("eval", "Evaluate an adapter (Eval:Adapter, default: the train run's) on the test split.", needsMethod: true));
        root.Subcommands.Add(VerbCommand<PretrainVerb>("pretrain", "Pre-train the Backbone from scratch on the Pretrain classes (cached)."));
        var describe = new Option<bool>("--describe") { Description = "Print each method's options table." };
        root.Subcommands.Add(VerbCommand<MethodsVerb>("methods", "List the methods (built-in baselines and plugins).", extra: describe,
            extraOverride: parse => parse.GetValue(describe) ? "Methods:Describe=true" : null));
        root.Subcommands.Add(VerbCommand<SchemaVerb>("schema", $"Write the JSON schema of the configuration (Schema:Output, default {OptionsCatalog.SchemaFileName})."));
        return root.Parse(args).Invoke();
    }

    private static Command VerbCommand<TVerb>(string name, string description, bool needsMethod = false, Option? extra = null,
        Func<ParseResult, string?>? extraOverride = null) where TVerb : class, IVerb
    {
        var config = new Option<FileInfo?>("--config") { Description = "A JSON configuration file layered over appsettings.json." };
        var overrides = new Argument<string[]>("overrides")
        {
            Description = "Configuration overrides as Key=Value, with ':' between sections (e.g. Run:Threads=2).",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var command = new Command(name, description) { config, overrides };
        if (extra is not null) command.Options.Add(extra);
        command.SetAction(parse =>
        {
            var all = (parse.GetValue(overrides) ?? []).ToList();
            if (extraOverride?.Invoke(parse) is { } more) all.Add(more);
            return PeftHost.Run<TVerb>(name, parse.GetValue(config), all, needsMethod);
        });
        return command;
    }
}
