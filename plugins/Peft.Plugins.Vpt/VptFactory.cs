using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;

namespace Peft.Plugins.Vpt;

[PeftMethod("vpt")]
public sealed class VptFactory : IMethodFactory
{
    public string Description => "VPT (Jia et al., 2022): prompt tokens at the input (shallow) or before every block (deep).";
    public HyperParametersInfo Options { get; } = HyperParametersInfo.Of<VptOptions>();

    /// <summary>
    /// VPT's recipe (vpt_gated.md §1c): SGD momentum 0.9, weight decay on all but the head bias,
    /// lr = base_lr × batch/256, 10 warm-up epochs from 0 then cosine to 100, stepped per epoch.
    /// base_lr and wd come from a sweep in the paper; 1.0 and 1e-3 are the demo's VTAB values.
    /// </summary>
    public TrainerOptions DefaultRecipe() => new()
    {
        Optimizer = OptimizerKind.Sgd, Momentum = 0.9, BaseLr = 1.0, WeightDecay = 1e-3, ScaleLrByBatch = true, Epochs = 100, WarmupEpochs = 10,
        ScheduleUnit = ScheduleUnit.Epoch,
    };

    public IPeftMethod Create(MethodContext context) => new VptMethod(context.Backbone, context.NumClasses, (VptOptions)context.Options);
}
