using Peft.Configuration;

namespace Peft.Bench;

/// <summary>`peft bench speed` (and its per-measurement `peft bench step`): speed and memory against PyTorch eager.</summary>
[HyperParameters("SpeedBench")]
[Description("Speed and memory against PyTorch eager (peft bench speed): models, methods, steps and where results go.")]
public sealed partial record SpeedBenchOptions
{
    [Description("Backbones (timm presets at 224 px, random weights); empty: vit-s16 and vit-b16.")]
    public List<string> Models { get; init; } = [];

    [Description("Methods (linear, full, bias, vpt-shallow, vpt-deep, gated, vapt, davpt, davpt+); empty: all.")]
    public List<string> Methods { get; init; } = [];

    [Range(1, 4096), Description("Images per batch.")]
    public int BatchSize { get; init; } = 32;

    [Range(1, 1000), Description("Timed training steps (the median is reported).")]
    public int Steps { get; init; } = 4;

    [Range(0, 1000), Description("Untimed warm-up training steps before them (both sides' first steps fault in fresh memory).")]
    public int WarmupSteps { get; init; } = 2;

    [Range(1, 1000), Description("Timed evaluation batches (after one untimed).")]
    public int EvalSteps { get; init; } = 2;

    [Range(0, 1024), Description("libtorch threads on both sides; 0: every core.")]
    public int Threads { get; init; }

    [Description("Also measure PyTorch with OpenBLAS as it detects the CPU, when that is not the CPU's own kernel (slow: 3–4× on a misdetected CPU).")]
    public bool TorchOutOfBox { get; init; } = true;

    [Description("Read a measurement whose JSON is already in RunsDir (same model, method, batch, threads and step counts) instead of " +
                 "running it again: to finish an interrupted run, or to re-measure some rows only (delete their files). The report lists what it reused.")]
    public bool Reuse { get; init; }

    [Required, Description("Python with Debian's python3-torch, for the PyTorch side.")]
    public string Python { get; init; } = "/usr/bin/python3";

    [Required, Description("Folder for the report: speed.md, .json and .svg.")]
    public string Output { get; init; } = "benchmarks";

    [Required, Description("Folder of the per-measurement logs and JSON.")]
    public string RunsDir { get; init; } = "runs/speed";

    [Description("peft bench step: the backbone preset to measure.")]
    public string Model { get; init; } = "vit-s16";

    [Description("peft bench step: the method to measure.")]
    public string Method { get; init; } = "vapt";

    [Description("peft bench step: where to write the measurement (JSON); empty: standard output only.")]
    public string? StepOutput { get; init; }
}
