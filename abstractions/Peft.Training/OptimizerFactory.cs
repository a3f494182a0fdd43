using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using static Peft.Torch.torch;

namespace Peft.Training;

/// <summary>The optimizer and schedule of a recipe.</summary>
public static class OptimizerFactory
{
    /// <summary>The learning rate before the schedule: base_lr, times batch/256 when the recipe scales it (VPT).</summary>
    public static double PeakLr(TrainerOptions recipe, int batchSize) =>
        recipe.BaseLr * (recipe.ScaleLrByBatch ? batchSize / 256.0 : 1.0);

    public static optim.Optimizer Create(TrainerOptions recipe, IReadOnlyList<ParameterGroup> groups, int batchSize)
    {
        var lr = PeakLr(recipe, batchSize);
        return recipe.Optimizer switch
        {
            "sgd" => new optim.SGD(groups.Select(g => (optim.ParamGroup)new optim.SGD.Group(g.Parameters.Select(p => p.Parameter),
                lr: lr * g.LrScale, weight_decay: g.WeightDecay)), lr, recipe.Momentum, nesterov: recipe.Nesterov),
            "adamw" => new optim.AdamW(groups.Select(g => (optim.ParamGroup)new optim.AdamW.Group(g.Parameters.Select(p => p.Parameter),
                lr: lr * g.LrScale, weight_decay: g.WeightDecay)), lr, (recipe.Beta1, recipe.Beta2)),
            _ => throw new ArgumentException($"unknown optimizer '{recipe.Optimizer}' (sgd, adamw)"),
        };
    }

    /// <summary>
    /// Linear warm-up from 0 then cosine to FinalLr, advanced once per epoch (the VPT family: epoch 0
    /// trains at lr 0) or once per optimizer step (DA-VPT).
    /// </summary>
    public static optim.lr_scheduler.WarmupCosineSchedule Schedule(optim.Optimizer optimizer, TrainerOptions recipe, int stepsPerEpoch,
        int batchSize)
    {
        var unit = recipe.ScheduleUnit == "step" ? Math.Max(1, stepsPerEpoch) : 1;
        var peak = PeakLr(recipe, batchSize);
        var final = peak > 0 ? recipe.FinalLr / peak : 0;
        return new optim.lr_scheduler.WarmupCosineSchedule(optimizer, recipe.WarmupEpochs * unit, Math.Max(recipe.WarmupEpochs, recipe.Epochs) * unit,
            warmup_start_factor: 0, final_factor: final);
    }
}
