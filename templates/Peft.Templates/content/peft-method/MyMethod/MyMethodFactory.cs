using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;

namespace MyMethod;

/// <summary>The factory the host finds by its attribute: the id users write in Method:Name, the options, the recipe.</summary>
[PeftMethod("my-method")]
public sealed class MyMethodFactory : IMethodFactory
{
    public string Description => "MyMethod: prompt tokens after CLS and a linear head.";

    public HyperParametersInfo Options { get; } = HyperParametersInfo.Of<MyMethodOptions>();

    /// <summary>The paper's recipe; the configuration's Trainer section is bound on top of it.</summary>
    public TrainerOptions DefaultRecipe() => new()
    {
        Optimizer = OptimizerKind.Sgd, Momentum = 0.9, BaseLr = 1.0, WeightDecay = 1e-3, ScaleLrByBatch = true, Epochs = 100, WarmupEpochs = 10,
        ScheduleUnit = ScheduleUnit.Epoch,
    };

    public IPeftMethod Create(MethodContext context) =>
        new MyMethodMethod(context.Backbone, context.NumClasses, (MyMethodOptions)context.Options);
}
