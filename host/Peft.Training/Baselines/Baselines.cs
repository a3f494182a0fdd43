using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Training.Baselines;

[HyperParameters("Method:Options")]
[Description("Options of the built-in baselines (linear probing, bias tuning, full fine-tuning).")]
public sealed partial record BaselineOptions
{
    [Range(-100, 100), Description("Initial bias of every class in the head; VPT's -log(99) = -4.5951 by default.")]
    public double HeadBias { get; init; } = -4.59511985013459;
}

/// <summary>Which backbone tensors a baseline tunes besides the head.</summary>
public enum BaselineKind
{
    /// <summary>The head only, on frozen features.</summary>
    Linear,

    /// <summary>Every bias of the backbone, plus the head (BitFit-style bias tuning).</summary>
    Bias,

    /// <summary>Every backbone tensor, plus the head; the backbone runs in train mode.</summary>
    Full,
}

/// <summary>A baseline: a head on the unchanged forward pass, and possibly some backbone tensors.</summary>
public sealed class BaselineMethod : IPeftMethod
{
    private readonly BaselineKind _kind;
    private readonly Holder _module;

    /// <summary>The module an adapter file saves: just the head, under <c>head.</c>.</summary>
    private sealed class Holder : nn.Module
    {
        public Holder(ClassifierHead head) : base("Baseline") => register_module("head", head);
    }

    public BaselineMethod(BaselineKind kind, IVisionBackbone backbone, int classes, BaselineOptions options)
    {
        _kind = kind;
        HeadModule = new ClassifierHead(backbone.Spec.Dim, classes, options.HeadBias);
        _module = new Holder(HeadModule);
        BackboneTrainables = kind switch
        {
            BaselineKind.Linear => [],
            BaselineKind.Bias => backbone.Module.named_parameters().Select(p => p.name)
                .Where(n => n.EndsWith(".bias", StringComparison.Ordinal)).ToList(),
            _ => backbone.Module.named_parameters().Select(p => p.name).ToList(),
        };
    }

    public ClassifierHead HeadModule { get; }
    public nn.Module Module => _module;
    public IReadOnlyList<string> BackboneTrainables { get; }
    public bool BackboneInTrainMode => _kind == BaselineKind.Full;
    public bool FrozenFeatures => _kind == BaselineKind.Linear;

    public Tensor Head(Tensor pooled) => HeadModule.call(pooled);

    public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone backbone) =>
        Trainables.VptGroups(this, backbone, recipe);

    public void Dispose() => _module.Dispose();
}

/// <summary>The factories of the three baselines; each keeps VPT's recipe as its default.</summary>
public abstract class BaselineFactory(BaselineKind kind, string description) : IMethodFactory
{
    public string Description => description;
    public HyperParametersInfo Options { get; } = HyperParametersInfo.Of<BaselineOptions>();

    /// <summary>VPT's recipe (vpt_gated.md §1c): SGD momentum 0.9, base lr × batch/256, 10 warm-up epochs, cosine to 100.</summary>
    public TrainerOptions DefaultRecipe() => new()
    {
        Optimizer = OptimizerKind.Sgd, Momentum = 0.9, Epochs = 100, WarmupEpochs = 10, ScheduleUnit = ScheduleUnit.Epoch, ScaleLrByBatch = true,
        BaseLr = kind == BaselineKind.Full ? 0.01 : 0.1, WeightDecay = kind == BaselineKind.Full ? 1e-4 : 0,
    };

    public IPeftMethod Create(MethodContext context) =>
        new BaselineMethod(kind, context.Backbone, context.NumClasses, (BaselineOptions)context.Options);
}

[PeftMethod("linear")]
public sealed class LinearProbeFactory() : BaselineFactory(BaselineKind.Linear, "Linear probing: a head on frozen features.");

[PeftMethod("bias")]
public sealed class BiasTuningFactory() : BaselineFactory(BaselineKind.Bias, "Bias tuning: every backbone bias and the head.");

[PeftMethod("full")]
public sealed class FullFineTuningFactory() : BaselineFactory(BaselineKind.Full, "Full fine-tuning: every backbone tensor and the head.");
