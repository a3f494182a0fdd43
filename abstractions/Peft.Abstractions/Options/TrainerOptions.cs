using Peft.Configuration;

namespace Peft.Abstractions.Options;

/// <summary>The optimizer of a recipe.</summary>
public enum OptimizerKind
{
    /// <summary>SGD with (optionally Nesterov) momentum.</summary>
    Sgd,

    /// <summary>Adam with decoupled weight decay.</summary>
    AdamW,
}

/// <summary>What one step of the learning-rate schedule is.</summary>
public enum ScheduleUnit
{
    /// <summary>One epoch (the VPT family: epoch 0 trains at the warm-up's first rate).</summary>
    Epoch,

    /// <summary>One optimizer step (DA-VPT).</summary>
    Step,
}

/// <summary>
/// The training recipe. Each method declares its default (the papers' recipes); the host binds the
/// Trainer section on top of it, so configuration overrides only the keys it names.
/// </summary>
[HyperParameters("Trainer")]
[Description("Optimizer, schedule and loop settings; a method supplies its paper's defaults, configuration overrides them.")]
public sealed partial record TrainerOptions
{
    [Range(1, 4096), Description("Images per training batch; a method's recipe sets its paper's (DA-VPT: 32, 16 classes × 2).")]
    public int BatchSize { get; init; } = 64;

    [Range(1, 100000), Description("Training epochs.")]
    public int Epochs { get; init; } = 100;

    [Description("Optimizer: SGD with momentum (the VPT family) or AdamW (DA-VPT).")]
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;

    [Range(0, 100), Description("Base learning rate (before batch scaling, when enabled).")]
    public double BaseLr { get; init; } = 0.1;

    [Description("Scale the learning rate by batch/256 (VPT's rule).")]
    public bool ScaleLrByBatch { get; init; } = true;

    [Range(0, 10), Description("Weight decay of the decayed parameter group.")]
    public double WeightDecay { get; init; } = 1e-4;

    [Range(0, 10), Description("Weight decay of the head's weight; empty: WeightDecay.")]
    public double? HeadWeightDecay { get; init; }

    [Range(0, 0.999), Description("SGD momentum.")]
    public double Momentum { get; init; } = 0.9;

    [Description("Nesterov momentum (SGD).")]
    public bool Nesterov { get; init; }

    [Range(0, 0.999999), Description("AdamW beta1.")]
    public double Beta1 { get; init; } = 0.9;

    [Range(0, 0.999999), Description("AdamW beta2.")]
    public double Beta2 { get; init; } = 0.999;

    [Range(0, 100000), Description("Linear warm-up length in epochs (converted to steps when the schedule advances per step).")]
    public int WarmupEpochs { get; init; } = 10;

    [Description("Advance the schedule once per epoch (VPT family) or per optimizer step (DA-VPT).")]
    public ScheduleUnit ScheduleUnit { get; init; } = ScheduleUnit.Epoch;

    [Range(0, 100), Description("Learning rate at the end of the cosine schedule.")]
    public double FinalLr { get; init; }

    [Range(0, 1e9), Description("Clip the gradient norm to this value; 0: off.")]
    public double ClipGradNorm { get; init; }

    [Range(0, 1e9), Description("Clip each gradient element to ±this value; 0: off.")]
    public double ClipGradValue { get; init; }

    [Range(1, 100000), Description("Evaluate every N epochs (and always after the last).")]
    public int EvalEvery { get; init; } = 10;

    [Range(0, 100000), Description("Write a checkpoint every N epochs (and at the end, and on Ctrl+C); 0: only those.")]
    public int CheckpointEvery { get; init; } = 1;

    [Range(0, 1), Description("Label smoothing of the cross entropy.")]
    public double LabelSmoothing { get; init; }

    [Description("For methods whose features are frozen (linear probing) and data without random augmentation: compute each image's feature once and train the head on the cache, an exact shortcut.")]
    public bool CacheFeatures { get; init; } = true;
}
