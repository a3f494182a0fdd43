using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Torch;
using static Peft.Torch.torch;

namespace Peft.Plugins.Gated;

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

    public nn.Parameter prompt_embeddings { get; }

    /// <summary>γ for blocks 0..L−2 (0-based); the last block is not gated.</summary>
    public nn.Parameter gate_logit { get; }

    /// <summary>τ for every block, initialised to 1.</summary>
    public nn.Parameter temp { get; }

    public nn.Dropout prompt_dropout { get; }
    public ClassifierHead head { get; }

    public GatedMethod(IVisionBackbone backbone, int classes, GatedOptions options)
    {
        _options = options;
        var spec = backbone.Spec;
        _depth = spec.Depth;
        _meanReadout = options.Readout == "mean" || (options.Readout == "auto" && backbone.Kind == BackboneKind.Mae);
        prompt_embeddings = RegisterParameter("prompt_embeddings", PromptInit.VptUniform([1, options.PromptTokens, spec.Dim], spec.PatchSize, spec.Dim));
        gate_logit = RegisterParameter("gate_logit", new nn.Parameter(full([spec.Depth - 1], -options.GateInit)));
        temp = RegisterParameter("temp", new nn.Parameter(ones(spec.Depth)));
        prompt_dropout = RegisterModule("prompt_dropout", new nn.Dropout(options.PromptDropout));
        head = RegisterModule("head", new ClassifierHead(spec.Dim, classes));
    }

    public nn.Module Module => this;

    public Tensor AfterEmbedding(Tensor tokens) => PromptTokens.InsertShared(tokens, prompt_embeddings, prompt_dropout);

    public Tensor AttentionTemperature(int index) => temp.narrow(0, index, 1);

    public Tensor AfterBlock(int index, Tensor blockInput, Tensor blockOutput)
    {
        if (index >= _depth - 1) return blockOutput; // the last block is ungated
        var p = _options.PromptTokens;
        using var logit = gate_logit.narrow(0, index, 1);
        using var gate = nn.functional.sigmoid(logit);
        using var before = PromptTokens.Slots(blockInput, p);
        using var after = PromptTokens.Slots(blockOutput, p);
        // Z_P^l = g·Z̃_P^l + (1 − g)·Z_P^(l−1) (paper Eq. 6): g = 1 gives the block's output exactly.
        using var open = after * gate;
        using var closed = 1.0 - gate;
        using var kept = before * closed;
        using var mixed = open + kept;
        return PromptTokens.Replace(blockOutput, mixed, p);
    }

    public Tensor Pool(Tensor tokens, IVisionBackbone backbone)
    {
        if (!_meanReadout)
        {
            using var normed = backbone.FinalNorm(tokens);
            return normed.select(1, 0);
        }
        // MAE: the mean of every token after CLS (prompts included), then the pretrained final norm.
        using var rest = tokens.narrow(1, 1, tokens.size(1) - 1);
        using var mean = rest.mean(1);
        return backbone.FinalNorm(mean);
    }

    public Tensor Head(Tensor pooled) => head.call(pooled);

    /// <summary>Projects τ into [min, max] in place: a projection step, not a differentiable clamp.</summary>
    public void AfterOptimizerStep()
    {
        using var noGrad = no_grad();
        temp.clamp_(_options.TemperatureMin, _options.TemperatureMax);
    }

    public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone backbone) =>
        Trainables.VptGroups(this, backbone, recipe);
}
