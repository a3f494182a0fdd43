using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;

namespace Peft.Plugins.Vapt;

[PeftMethod("vapt")]
public sealed class VaptFactory : IMethodFactory
{
    public string Description => "VAPT (Le et al., 2025): prompts generated from each block's input tokens.";
    public HyperParametersInfo Options { get; } = HyperParametersInfo.Of<VaptOptions>();

    /// <summary>
    /// The official recipe (vapt_davpt.md §1c), VPT's: SGD momentum 0.9, weight decay on all but the head
    /// bias, lr = base_lr × batch/256, 10 warm-up epochs + cosine to 100, stepped per epoch; batch 64.
    /// </summary>
    public TrainerOptions DefaultRecipe() => new()
    {
        Optimizer = OptimizerKind.Sgd, Momentum = 0.9, BaseLr = 1.0, WeightDecay = 1e-3, ScaleLrByBatch = true, Epochs = 100, WarmupEpochs = 10,
        ScheduleUnit = ScheduleUnit.Epoch,
    };

    public IPeftMethod Create(MethodContext context) => new VaptMethod(context.Backbone, context.NumClasses, (VaptOptions)context.Options);
}
