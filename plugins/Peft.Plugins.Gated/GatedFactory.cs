using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;

namespace Peft.Plugins.Gated;

[PeftMethod("gated")]
public sealed class GatedFactory : IMethodFactory
{
    public string Description => "Gated Prompt Tuning (Yoo et al., 2023): gated shallow prompts and learnable attention temperatures.";
    public HyperParametersInfo Options { get; } = HyperParametersInfo.Of<GatedOptions>();

    /// <summary>
    /// The official recipe (vpt_gated.md §2c): SGD momentum 0.9, weight decay 0, the learning rate
    /// used as given (no batch/256 scaling), 10 warm-up epochs + cosine to 100, stepped per epoch.
    /// </summary>
    public TrainerOptions DefaultRecipe() => new()
    {
        Optimizer = OptimizerKind.Sgd, Momentum = 0.9, BaseLr = 0.1, WeightDecay = 0, ScaleLrByBatch = false, Epochs = 100, WarmupEpochs = 10,
        ScheduleUnit = ScheduleUnit.Epoch,
    };

    public IPeftMethod Create(MethodContext context) => new GatedMethod(context.Backbone, context.NumClasses, (GatedOptions)context.Options);
}
