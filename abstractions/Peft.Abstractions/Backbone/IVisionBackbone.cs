using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Abstractions.Backbone;

/// <summary>
/// The frozen ViT as methods see it: its shape, its tensors, and one forward pass that calls the method's
/// <see cref="IBackboneHooks"/> at its seams (after the embedding, before and after every block, inside every block's
/// attention, at pooling).
/// </summary>
public interface IVisionBackbone
{
    VitSpec Spec { get; }

    BackboneKind Kind { get; }

    /// <summary>The backbone's module, with timm's parameter names (blocks.0.attn.qkv.weight, ...).</summary>
    torch.nn.Module Module { get; }

    /// <summary>Where the backbone's tensors live; a method's tensors and every batch live there too.</summary>
    Device Device { get; }

    /// <summary>A content hash of the loaded weights, recorded in adapter files to identify the backbone.</summary>
    string Identity { get; }

    /// <summary>
    /// Images (B, C, H, W) through the backbone with <paramref name="hooks"/> at its seams, to the pooled feature.
    /// The returned tensors belong to the caller's dispose scope.
    /// </summary>
    ForwardTrace Forward(Tensor images, IBackboneHooks hooks);

    /// <summary>The pretrained final LayerNorm, over every token.</summary>
    Tensor FinalNorm(Tensor x);
}

/// <summary>What one forward pass produced; its tensors belong to the caller's dispose scope.</summary>
public sealed class ForwardTrace
{
    /// <summary>Tokens after the last block, before the final norm (B, T, D).</summary>
    public required Tensor Tokens { get; init; }

    /// <summary>The pooled feature the head reads (B, D).</summary>
    public required Tensor Pooled { get; init; }
}
