using Peft.Abstractions.Backbone;
using Peft.Abstractions.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Abstractions.Methods;

/// <summary>How the trainer should draw batches for a method.</summary>
public enum BatchSampling
{
    /// <summary>A fresh deterministic shuffle every epoch.</summary>
    Shuffled,

    /// <summary>B/k classes × k samples per batch (DA-VPT's metric losses need positives in the batch).</summary>
    ClassBalanced,
}

/// <summary>Parameters that share optimizer settings (their weight decay).</summary>
public sealed record ParameterGroup(string Name, IReadOnlyList<(string Name, Parameter Parameter)> Parameters, double WeightDecay);

/// <summary>What the trainer gives a method at the end of an epoch (DA-VPT re-clusters here).</summary>
public sealed record EpochContext(int Epoch, IVisionBackbone Backbone, Func<IEnumerable<(Tensor Images, Tensor Labels)>> TrainBatches);

/// <summary>
/// One attached method: it owns every trainable tensor (prompts, gates, generators, head) in
/// <see cref="Module"/>, and changes the frozen backbone's forward pass only through the hooks.
/// Methods that also tune backbone tensors (bias tuning, full fine-tuning, DA-VPT+) list them in
/// <see cref="BackboneTrainables"/>; the trainer unfreezes exactly those.
/// </summary>
public interface IPeftMethod : IBackboneHooks, IDisposable
{
    /// <summary>The method's own trainable module (its parameter names are the adapter file's keys).</summary>
    torch.nn.Module Module { get; }

    /// <summary>Backbone parameters this method trains too, by their backbone names; none for prompt methods.</summary>
    IReadOnlyList<string> BackboneTrainables => [];

    /// <summary>Whether the backbone runs in train mode (its dropout on): only full fine-tuning.</summary>
    bool BackboneInTrainMode => false;

    /// <summary>Logits (B, C) from the pooled feature (B, D).</summary>
    Tensor Head(Tensor pooled);

    /// <summary>Optimizer groups with their weight decay, from the recipe in force.</summary>
    IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone backbone);

    /// <summary>A loss added to the cross entropy, from the forward trace (DA-VPT); null for none.</summary>
    Tensor? AuxiliaryLoss(ForwardTrace trace, Tensor labels) => null;

    /// <summary>Called after every optimizer step (GatedPT projects its temperatures into range here).</summary>
    void AfterOptimizerStep() { }

    /// <summary>
    /// Called once before the first training step of a run (not when resuming): DA-VPT builds its
    /// class → prompt mapping from the frozen model here. <see cref="EpochContext.TrainBatches"/> yields epoch 0's batches.
    /// </summary>
    void OnTrainingStart(EpochContext context) { }

    /// <summary>Called after every training epoch.</summary>
    void OnEpochEnd(EpochContext context) { }

    BatchSampling Sampling => BatchSampling.Shuffled;

    /// <summary>
    /// True when the method adds nothing to the backbone's forward pass and trains only its head, with no auxiliary
    /// loss (linear probing): the pooled feature of an image never changes, so the trainer may compute it once.
    /// </summary>
    bool FrozenFeatures => false;
}
