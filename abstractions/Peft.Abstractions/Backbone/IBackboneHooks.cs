using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Abstractions.Backbone;

/// <summary>
/// The hook points of the forward pass: the token seams between the backbone's stages and, through
/// <see cref="IAttentionHooks"/>, the attention inside every block. Every member has the plain ViT's behaviour as
/// default, so a method overrides only what it changes. Token layout for prompt methods: [CLS, prompts, patches].
/// </summary>
public interface IBackboneHooks : IAttentionHooks
{
    /// <summary>After embedding (position embedding already added): insert prompts, e.g. VPT's.</summary>
    Tensor AfterEmbedding(Tensor tokens) => tokens;

    /// <summary>Before block <paramref name="index"/>: deep prompts replace the previous prompt outputs.</summary>
    Tensor BeforeBlock(int index, Tensor x) => x;

    /// <summary>After block <paramref name="index"/>: e.g. GatedPT mixes output and input at the prompt slots.</summary>
    Tensor AfterBlock(int index, Tensor blockInput, Tensor blockOutput) => blockOutput;

    /// <summary>The pooled feature for the head: by default the read-out of the backbone's kind (<see cref="Readout.ByKind"/>).</summary>
    Tensor Pool(Tensor tokens, IVisionBackbone backbone) => Readout.ByKind(tokens, backbone);
}

/// <summary>The plain ViT: no hooks.</summary>
public sealed class NoHooks : IBackboneHooks
{
    public static readonly NoHooks Instance = new();
}
