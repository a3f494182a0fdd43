using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MyMethod;

/// <summary>
/// The method: a TorchSharp module holding every trainable tensor (its field names are the adapter file's keys), and the
/// hooks it overrides. This one inserts p prompts after CLS, [CLS, prompts, patches], and reads out CLS with a linear head.
/// Other seams (IBackboneHooks, IAttentionHooks): BeforeBlock, AfterBlock, AttentionQkv (q, k, v of a block after the
/// projection), NeedsAttentionLogits + AttentionLogits, AttentionOutput (before the output projection), Pool;
/// IPeftMethod: AuxiliaryLoss, AfterOptimizerStep, OnTrainingStart, OnEpochEnd, Sampling, BackboneTrainables.
/// </summary>
public sealed class MyMethodMethod : nn.Module, IPeftMethod
{
    public readonly Parameter prompt_embeddings;
    public readonly ReplayableDropout prompt_dropout; // libtorch's dropout; a test can replay a reference's masks (MaskSource)
    public readonly ClassifierHead head;

    public MyMethodMethod(IVisionBackbone backbone, int classes, MyMethodOptions options) : base(nameof(MyMethodMethod))
    {
        var spec = backbone.Spec;
        prompt_embeddings = PromptInit.VptUniform([1, options.PromptTokens, spec.Dim], spec.PatchSize, spec.Dim);
        prompt_dropout = new ReplayableDropout(options.PromptDropout);
        head = new ClassifierHead(spec.Dim, classes);
        RegisterComponents();
    }

    public nn.Module Module => this;

    public Tensor AfterEmbedding(Tensor tokens) => PromptTokens.InsertShared(tokens, prompt_embeddings, prompt_dropout);

    public Tensor Head(Tensor pooled) => head.forward(pooled);

    /// <summary>Weight decay on everything but the head bias (VPT's rule); the head is found by its role.</summary>
    public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone backbone) =>
        Trainables.VptGroups(this, backbone, recipe);
}
