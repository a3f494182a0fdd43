using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;

namespace PrefixTuning;

[PeftMethod("prefix")]
public sealed class PrefixFactory : IMethodFactory
{
    public string Description => "Prefix tuning: learned keys and values before every block's own (a drop-in plugin).";

    public HyperParametersInfo Options { get; } = HyperParametersInfo.Of<PrefixOptions>();

    /// <summary>VPT's recipe (SGD momentum 0.9, lr × batch/256, warm-up then cosine), as for the other prompt methods.</summary>
    public TrainerOptions DefaultRecipe() => new()
    {
        Optimizer = OptimizerKind.Sgd, Momentum = 0.9, BaseLr = 1.0, WeightDecay = 1e-3, ScaleLrByBatch = true, Epochs = 100, WarmupEpochs = 10,
        ScheduleUnit = ScheduleUnit.Epoch,
    };

    public IPeftMethod Create(MethodContext context) => new PrefixMethod(context.Backbone, context.NumClasses, (PrefixOptions)context.Options);
}
