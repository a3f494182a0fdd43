using Peft.Configuration;
using Peft.Host.Hosting;

namespace Peft.Bench;

/// <summary>
/// `peft-bench VERB [--config FILE] [Key=Value ...]`: the benchmarks, configured like `peft` (appsettings.json, --config,
/// PEFT_* variables, overrides) with their own sections VtabBench and SpeedBench.
/// </summary>
public static class Program
{
    private static readonly IReadOnlyList<HyperParametersInfo> Sections =
        [HyperParametersInfo.Of<VtabBenchOptions>(), HyperParametersInfo.Of<SpeedBenchOptions>()];

    public static int Main(string[] args)
    {
        var root = new System.CommandLine.RootCommand("peft-bench: Peft's benchmarks and their reports (benchmarks/).");
        root.Subcommands.Add(VerbCommands.WithFlag<VtabBenchVerb>("vtab", "Mini VTAB-1k accuracy benchmark on real data (VtabBench:*).",
            "--quick", "Quick mode: no sweep, one seed (VtabBench:Quick=true).", "VtabBench:Quick=true", extraOptions: Sections));
        root.Subcommands.Add(VerbCommands.Create<SpeedBenchVerb>("speed",
            "Speed and memory against PyTorch eager and a plain TorchSharp loop on ViT-S/16 and ViT-B/16 (SpeedBench:*).", extraOptions: Sections));
        root.Subcommands.Add(VerbCommands.Create<SpeedStepVerb>("step",
            "One Peft speed measurement (peft-bench speed runs it): SpeedBench:Model, SpeedBench:Method, Method:Name.", needsMethod: true,
            extraOptions: Sections));
        root.Subcommands.Add(VerbCommands.Create<PlainStepVerb>("plain",
            "The same training step as a plain TorchSharp loop (peft-bench speed runs it): SpeedBench:Model, SpeedBench:Method.", extraOptions: Sections));
        root.Subcommands.Add(VerbCommands.Create<EngineBenchVerb>("engine",
            "Engine throughput: per-operator cost through TorchSharp and GEMM / ViT-B linear GFLOP/s (Bench:Output=FILE writes JSON).",
            extraOptions: Sections));
        return root.Parse(args).Invoke();
    }
}
