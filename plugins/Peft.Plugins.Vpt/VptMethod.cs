using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Plugins.Vpt;

#pragma warning disable IDE1006 // fields are named as VPT's tensors (the adapter file's keys)

/// <summary>
/// VPT (vpt_gated.md §1a): p prompt tokens inserted after CLS once the position embedding is added
/// (so they carry none): [CLS, P, patches]. Deep: before blocks 1..L−1 the previous block's prompt
/// outputs are thrown away and replaced by that layer's own prompts. Prompt dropout on every
/// insertion; optional projection from a smaller prompt width; read-out CLS after the final norm.
/// </summary>
public sealed class VptMethod : nn.Module, IPeftMethod
{
    private readonly VptOptions _options;
    private readonly int _depth;

    /// <summary>The input prompts (1, p, d_p).</summary>
    public readonly Parameter prompt_embeddings;

    /// <summary>Deep prompts for blocks 1..L−1, (L−1, p, d_p); null for shallow.</summary>
    public readonly Parameter? deep_prompt_embeddings;

    /// <summary>d_p → D when Projection is on.</summary>
    public readonly Linear? prompt_proj;

    public readonly ReplayableDropout prompt_dropout;
    public readonly ClassifierHead head;

    public VptMethod(IVisionBackbone backbone, int classes, VptOptions options) : base(nameof(VptMethod))
    {
        _options = options;
        var spec = backbone.Spec;
        _depth = spec.Depth;
        var width = options.Projection > 0 ? options.Projection : spec.Dim;
        // uniform(−v, v), v = √(6 / (3·patch² + d_p)) for every prompt set (§1b).
        prompt_embeddings = PromptInit.VptUniform([1, options.PromptTokens, width], spec.PatchSize, width);
        if (options.Mode == VptMode.Deep && spec.Depth > 1)
            deep_prompt_embeddings = PromptInit.VptUniform([spec.Depth - 1, options.PromptTokens, width], spec.PatchSize, width);
        if (options.Projection > 0)
        {
            prompt_proj = nn.Linear(width, spec.Dim);
            using (no_grad()) nn.init.kaiming_normal_(prompt_proj.weight, mode: nn.init.FanInOut.FanOut);
        }
        // Unset: VPT's recipe by mode (configs/prompt/*.yaml: 0.0 shallow, 0.1 deep).
        prompt_dropout = new ReplayableDropout(options.PromptDropout ?? (options.Mode == VptMode.Deep ? 0.1 : 0.0));
        head = new ClassifierHead(spec.Dim, classes);
        RegisterComponents(); // the null members (shallow, no projection) are not registered
    }

    public nn.Module Module => this;

    public int PromptCount => _options.PromptTokens;

    /// <summary>dropout(proj(prompts)) for the batch, a mask per sample: (B, p, D).</summary>
    private Tensor Prepare(Tensor prompts, long batch)
    {
        using var projected = prompt_proj is null ? prompts.alias() : prompt_proj.forward(prompts);
        return PromptTokens.ForBatch(projected, batch, prompt_dropout);
    }

    public Tensor AfterEmbedding(Tensor tokens)
    {
        using var prompts = Prepare(prompt_embeddings, tokens.size(0));
        return PromptTokens.Insert(tokens, prompts);
    }

    public Tensor BeforeBlock(int index, Tensor x)
    {
        if (deep_prompt_embeddings is null || index == 0 || index >= _depth) return x;
        using var layer = deep_prompt_embeddings.narrow(0, index - 1, 1);
        using var prompts = Prepare(layer, x.size(0));
        return PromptTokens.Replace(x, prompts, _options.PromptTokens);
    }

    public Tensor Head(Tensor pooled) => head.forward(pooled);

    public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone backbone) =>
        Trainables.VptGroups(this, backbone, recipe);
}
