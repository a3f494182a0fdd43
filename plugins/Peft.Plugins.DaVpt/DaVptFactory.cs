using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;

namespace Peft.Plugins.DaVpt;

[PeftMethod("davpt")]
public sealed class DaVptFactory() : DaVptFactoryBase(plus: false)
{
    public override string Description => "DA-VPT (Ren et al., 2025): deep prompts guided as class-cluster proxies by Proxy-Anchor losses.";
}

[PeftMethod("davpt+")]
public sealed class DaVptPlusFactory() : DaVptFactoryBase(plus: true)
{
    public override string Description => "DA-VPT+ : DA-VPT plus tuning of every block's key/value biases and the CLS token.";
}

public abstract class DaVptFactoryBase(bool plus) : IMethodFactory
{
    public abstract string Description { get; }
    public HyperParametersInfo Options { get; } = HyperParametersInfo.Of<DaVptOptions>();

    /// <summary>
    /// The released recipe (vapt_davpt.md §2c): AdamW, warm-up + cosine stepped per iteration, 100 epochs,
    /// gradient clipping by value 10, a large separate head weight decay, lr used as given.
    /// </summary>
    public TrainerOptions DefaultRecipe() => new()
    {
        // Batch 32 = 16 classes × 2 images (the paper §4.1 and the released configs' DATALOADER.BATCH_SIZE).
        BatchSize = 32, Optimizer = OptimizerKind.AdamW, BaseLr = 1e-3, ScaleLrByBatch = false, WeightDecay = 0.05, HeadWeightDecay = 3, Epochs = 100,
        WarmupEpochs = 10, ScheduleUnit = ScheduleUnit.Step, ClipGradValue = 10,
    };

    public IPeftMethod Create(MethodContext context) =>
        new DaVptMethod(context.Backbone, context.NumClasses, (DaVptOptions)context.Options, context.Seed, plus);
}
