using Peft.Configuration;

namespace Peft.Bench;

/// <summary>`peft bench vtab`: the mini VTAB-1k accuracy benchmark (benchmarks/vtab-mini.md).</summary>
[HyperParameters("VtabBench")]
[Description("The mini VTAB-1k benchmark (peft bench vtab): tasks, methods, sweep, seeds and where results go.")]
public sealed partial record VtabBenchOptions
{
    [Description("Quick mode: no sweep and the first seed only; the learning rates come from QuickRatesFrom (else each method's default).")]
    public bool Quick { get; init; }

    [Description("Quick mode's learning rates: the rates the full benchmark's sweep chose, per task and method, from its vtab-mini.json.")]
    public string QuickRatesFrom { get; init; } = "benchmarks/vtab-mini.json";

    [Description("Tasks to run (fmnist_unseen, digits, rotation, position, count); empty: all.")]
    public List<string> Tasks { get; init; } = [];

    [Description("Methods to run (linear, full, bias, vpt-shallow, vpt-deep, gated, vapt, davpt, davpt+); empty: all.")]
    public List<string> Methods { get; init; } = [];

    [Description("Seeds of the final runs on train800val200 (quick mode: the first).")]
    public List<int> Seeds { get; init; } = [1, 2, 3];

    [Description("Learning-rate multipliers swept on train800 -> val200, applied to each method's default learning rate.")]
    public List<double> LrScales { get; init; } = [0.1, 0.3, 1, 3, 10];

    [Range(1, 10000), Description("Training epochs of every run (warm-up: a tenth of them).")]
    public int Epochs { get; init; } = 20;

    [Range(1, 64), Description("Runs in parallel, each a process with one libtorch thread.")]
    public int Parallel { get; init; } = 2;

    [Required, Description("scikit-learn's digits.csv.gz (scripts/bench.sh extracts it from Debian's python3-sklearn package).")]
    public string Digits { get; init; } = "runs/vtab-mini/digits.csv.gz";

    [Required, Description("Folder of the generated tasks (VTAB-1k processed layout).")]
    public string DataDir { get; init; } = "runs/vtab-mini/data";

    [Required, Description("Folder of the individual runs (each reused when it is already complete).")]
    public string RunsDir { get; init; } = "runs/vtab-mini/runs";

    [Required, Description("Folder for the report: vtab-mini.md, .json and .svg (vtab-mini-quick.* in quick mode).")]
    public string Output { get; init; } = "benchmarks";

    [Range(0, 2147483647), Description("Seed of the task generation.")]
    public int DataSeed { get; init; } = 2024;
}
