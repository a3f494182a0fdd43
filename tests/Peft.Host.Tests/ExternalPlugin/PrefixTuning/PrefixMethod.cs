using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PrefixTuning;

/// <summary>
/// Prefix tuning / key-value prompts: every block l owns p keys P_k^l and values P_v^l (p, D), split into heads like the
/// tokens' own and put before them: head_i = softmax(q_i·[P_k; K]_iᵀ/√d_h)·[P_v; V]_i (He et al., 2022, §2.2). The
/// queries, and so the token sequence, are unchanged. Written against the contracts' attention seam only.
/// </summary>
public sealed class PrefixMethod : nn.Module, IPeftMethod
{
    private readonly int _heads;

    // Fields named as the adapter file's keys.

    /// <summary>(L, p, D): block l's learned keys.</summary>
    public readonly Parameter prefix_keys;

    /// <summary>(L, p, D): block l's learned values.</summary>
    public readonly Parameter prefix_values;

    public readonly ClassifierHead head;

    public PrefixMethod(IVisionBackbone backbone, int classes, PrefixOptions options) : base(nameof(PrefixMethod))
    {
        var spec = backbone.Spec;
        _heads = spec.Heads;
        long[] shape = [spec.Depth, options.PrefixTokens, spec.Dim];
        prefix_keys = PromptInit.VptUniform(shape, spec.PatchSize, spec.Dim);
        prefix_values = PromptInit.VptUniform(shape, spec.PatchSize, spec.Dim);
        using (no_grad())
        {
            prefix_keys.mul_(options.InitScale);
            prefix_values.mul_(options.InitScale);
        }
        head = new ClassifierHead(spec.Dim, classes);
        RegisterComponents();
    }

    public nn.Module Module => this;

    public QueryKeyValue AttentionQkv(int block, QueryKeyValue qkv) => qkv with
    {
        Key = Prepend(prefix_keys, block, qkv.Key),
        Value = Prepend(prefix_values, block, qkv.Value),
    };

    /// <summary>Block <paramref name="block"/>'s prefix (p, D), as (B, H, p, D/H), before <paramref name="own"/> (B, H, T, D/H).</summary>
    private Tensor Prepend(Parameter prefix, int block, Tensor own)
    {
        using var layer = prefix.select(0, block);
        using var heads = layer.view(1, layer.size(0), _heads, -1).transpose(1, 2);
        using var batch = heads.expand(own.size(0), -1, -1, -1);
        return cat([batch, own], 2);
    }

    public Tensor Head(Tensor pooled) => head.forward(pooled);

    public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, IVisionBackbone backbone) =>
        Trainables.VptGroups(this, backbone, recipe);
}
