using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Abstractions.Backbone;

/// <summary>
/// The frozen ViT as methods see it, cut at timm's seams: embedding (patches, CLS, position), the
/// blocks one at a time, and the final norm. <see cref="VisionForward.Forward"/> drives these seams
/// and calls the method's <see cref="IBackboneHooks"/> between them.
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

    /// <summary>Patch embedding, CLS token and absolute position embedding: (B, C, H, W) → (B, 1 + N, D).</summary>
    Tensor Embed(Tensor images);

    /// <summary>
    /// Runs block <paramref name="index"/> on (B, T, D) tokens. <paramref name="attentionTemperature"/>, when
    /// given, divides the attention logits (softmax(q·kᵀ/√d_h / τ)); <paramref name="capture"/>, when given,
    /// receives the block's internal features; <paramref name="qkvBiasDelta"/>, when given, is added to the
    /// fused (3D) query/key/value bias (methods that tune b_K and b_V learn such a delta).
    /// </summary>
    Tensor Block(int index, Tensor x, Tensor? attentionTemperature = null, BlockFeatures? capture = null, Tensor? qkvBiasDelta = null);

    /// <summary>The pretrained final LayerNorm, over every token.</summary>
    Tensor FinalNorm(Tensor x);
}

/// <summary>Per-block features a method asked for (DA-VPT's anchors). Owned by the forward pass's dispose scope.</summary>
public sealed class BlockFeatures
{
    /// <summary>The block's input tokens (B, T, D).</summary>
    public Tensor? Input { get; set; }

    /// <summary>The query vectors W_Q·LN1(x) + b_Q of every token, heads concatenated (B, T, D).</summary>
    public Tensor? Query { get; set; }

    /// <summary>The attention output before the output projection, heads concatenated (B, T, D).</summary>
    public Tensor? AttentionOutput { get; set; }
}
