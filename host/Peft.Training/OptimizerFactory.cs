using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Training;

/// <summary>The optimizer and schedule of a recipe, built from TorchSharp's.</summary>
public static class OptimizerFactory
{
    /// <summary>The learning rate before the schedule: base_lr, times batch/256 when the recipe scales it (VPT).</summary>
    public static double PeakLr(TrainerOptions recipe, int batchSize) =>
        recipe.BaseLr * (recipe.ScaleLrByBatch ? batchSize / 256.0 : 1.0);

    /// <summary>SGD (momentum, optional Nesterov) or AdamW, one parameter group per method group with its own weight decay.</summary>
    public static OptimizerHelper Create(TrainerOptions recipe, IReadOnlyList<ParameterGroup> groups, int batchSize)
    {
        var lr = PeakLr(recipe, batchSize);
        return recipe.Optimizer switch
        {
            OptimizerKind.Sgd => optim.SGD(groups.Select(g => new SGD.ParamGroup(g.Parameters.Select(p => p.Parameter),
                lr: lr, momentum: recipe.Momentum, nesterov: recipe.Nesterov, weight_decay: g.WeightDecay)),
                lr, recipe.Momentum, nesterov: recipe.Nesterov),
            OptimizerKind.AdamW => optim.AdamW(groups.Select(g => new AdamW.ParamGroup(g.Parameters.Select(p => p.Parameter),
                lr: lr, beta1: recipe.Beta1, beta2: recipe.Beta2, weight_decay: g.WeightDecay)),
                lr, recipe.Beta1, recipe.Beta2),
            _ => throw new ArgumentOutOfRangeException(nameof(recipe), recipe.Optimizer, "unknown optimizer"),
        };
    }

    /// <summary>
    /// Linear warm-up from 0 then cosine to FinalLr, advanced once per epoch (the VPT family: epoch 0 trains at lr 0) or
    /// once per optimizer step (DA-VPT). <paramref name="completedSteps"/> resumes the schedule where a checkpoint left it.
    /// </summary>
    public static optim.lr_scheduler.LRScheduler Schedule(OptimizerHelper optimizer, TrainerOptions recipe, int stepsPerEpoch,
        int batchSize, int completedSteps = 0)
    {
        var unit = recipe.ScheduleUnit == ScheduleUnit.Step ? Math.Max(1, stepsPerEpoch) : 1;
        var peak = PeakLr(recipe, batchSize);
        var factor = WarmupCosine(recipe.WarmupEpochs * unit, Math.Max(recipe.WarmupEpochs, recipe.Epochs) * unit,
            start: 0, final: peak > 0 ? recipe.FinalLr / peak : 0);
        // LambdaLR's constructor takes one step from last_epoch, so this sets the lr of step `completedSteps`.
        return optim.lr_scheduler.LambdaLR(optimizer, factor, last_epoch: completedSteps - 1);
    }

    /// <summary>
    /// Linear warmup then half-cosine decay, VPT's schedule (src/solver/lr_scheduler.py, WarmupCosineSchedule)
    /// generalised to a start and an end factor:
    /// f(s) = start + (1 − start)·s / warmup for s &lt; warmup; afterwards
    /// f(s) = final + (1 − final)·½(1 + cos(π·min(1, (s − warmup) / (total − warmup)))).
    /// VPT: 10 warmup epochs, total = the epochs, start = final = 0, stepped once per epoch.
    /// </summary>
    public static Func<int, double> WarmupCosine(int warmup, int total, double start, double final)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(warmup);
        ArgumentOutOfRangeException.ThrowIfLessThan(total, warmup);
        return s =>
        {
            if (s < warmup) return start + (1 - start) * s / warmup;
            var progress = Math.Min(1.0, (double)(s - warmup) / Math.Max(1, total - warmup));
            return final + (1 - final) * 0.5 * (1 + Math.Cos(Math.PI * progress));
        };
    }
}
