using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Peft.Plugins.Gated;

#pragma warning disable IDE1006 // fields are named as the official code's tensors (the adapter file's keys)

/// <summary>
/// Gated Prompt Tuning, as the official code does it (vpt_gated.md §2a–2f): VPT-shallow prompts;
/// after each block l = 1..L−1 (not the last) the prompt slots become g_l·(block output) +
/// (1 − g_l)·(block input) with g_l = sigmoid(γ_l), CLS and patches untouched; every block's
/// attention logits are divided by a learnable temperature τ_l (after the 1/√d_h scaling), projected
/// into [min, max] after every optimizer step.
/// </summary>
public sealed class GatedMethod : nn.Module, IPeftMethod
{
    private readonly GatedOptions _options;
    private readonly int _depth;
    private readonly bool _meanReadout;

    public readonly Parameter prompt_embeddings;

    /// <summary>γ for blocks 0..L−2 (0-based); the last block is not gated.</summary>
    public readonly Parameter gate_logit;

    /// <summary>τ for every block, initialised to 1.</summary>
    public readonly Parameter temp;

    public readonly ReplayableDropout prompt_dropout;
    public readonly ClassifierHead head;

    public GatedMethod(IVisionBackbone backbone, int classes, GatedOptions options) : base(nameof(GatedMethod))
    {
        _options = options;
        var spec = backbone.Spec;
        _depth = spec.Depth;
        _meanReadout = options.Readout == GatedReadout.Mean || (options.Readout == GatedReadout.Auto && backbone.Kind == BackboneKind.Mae);
        prompt_embeddings = PromptInit.VptUniform([1, options.PromptTokens, spec.Dim], spec.PatchSize, spec.Dim);
        gate_logit = new Parameter(full(spec.Depth - 1, -options.GateInit));
        temp = new Parameter(ones(spec.Depth));
        prompt_dropout = new ReplayableDropout(options.PromptDropout);
        head = new ClassifierHead(spec.Dim, classes);
        RegisterComponents();
    }

    public nn.Module Module => this;

    public Tensor AfterEmbedding(Tensor tokens) => PromptTokens.InsertShared(tokens, prompt_embeddings, prompt_dropout);

    /// <summary>
    /// softmax(q·kᵀ/√d_h / τ_l) = softmax((q/τ_l)·kᵀ/√d_h): the temperature divides the logits after the 1/√d_h scaling
    /// (the official code's vit_backbones/vit_mae.py, Attention.forward), folded into the queries so the backbone keeps its fused attention.
    /// </summary>
    public QueryKeyValue AttentionQkv(int block, QueryKeyValue qkv)
    {
        using var tau = temp.narrow(0, block, 1);
        return qkv with { Query = qkv.Query.div(tau) };
    }

    public Tensor AfterBlock(int index, Tensor blockInput, Tensor blockOutput)
    {
        if (index >= _depth - 1) return blockOutput; // the last block is ungated
        var p = _options.PromptTokens;
        using var logit = gate_logit.narrow(0, index, 1);
        using var gate = F.sigmoid(logit);
        using var before = PromptTokens.Slots(blockInput, p);
        using var after = PromptTokens.Slots(blockOutput, p);
        // Z_P^l = g·Z̃_P^l + (1 − g)·Z_P^(l−1) (paper Eq. 6): g = 1 gives the block's output exactly.
        using var open = after * gate;
        using var closed = 1.0 - gate;
        using var kept = before * closed;
        using var mixed = open + kept;
        return PromptTokens.Replace(blockOutput, mixed, p);
    }

    public Tensor Pool(Tensor tokens, IVisionBackbone backbone) =>
        _meanReadout ? Readout.MeanTokensWithFinalNorm(tokens, backbone) : Readout.ClsToken(tokens, backbone);

    public Tensor Head(Tensor pooled) => head.forward(pooled);

    /// <summary>Projects τ into [min, max] in place: a projection step, not a differentiable clamp.</summary>
    public void AfterOptimizerStep()
    {
        using var noGrad = no_grad();
        temp.clamp_(_options.TemperatureMin, _options.TemperatureMax);
    }

    public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone backbone) =>
        Trainables.VptGroups(this, backbone, recipe);
}
