using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Abstractions.Backbone;

/// <summary>
/// How a backbone's final tokens become the head's feature, written once for every method. The official code reads a
/// supervised or MoCo v3 ViT at the CLS token after the final norm, and an MAE ViT as the mean of every token after CLS
/// (prompts included) followed by a norm: VPT's and VAPT's vit_mae.py delete the pretrained norm and create a fresh,
/// frozen fc_norm (weight 1, bias 0: not in the MAE checkpoint); GatedPT's vit_mae.py keeps the pretrained norm.
/// </summary>
public static class Readout
{
    /// <summary>The read-out the backbone's kind calls for: <see cref="MeanTokens"/> for MAE (VPT's and VAPT's), else <see cref="ClsToken"/>.</summary>
    public static Tensor ByKind(Tensor tokens, IVisionBackbone backbone) =>
        backbone.Kind == BackboneKind.Mae ? MeanTokens(tokens, backbone) : ClsToken(tokens, backbone);

    /// <summary>The CLS token after the final norm: (B, T, D) → (B, D).</summary>
    public static Tensor ClsToken(Tensor tokens, IVisionBackbone backbone)
    {
        using var normed = backbone.FinalNorm(tokens);
        return normed.select(1, 0);
    }

    /// <summary>
    /// The mean of every token after CLS, prompts included, through a LayerNorm with no affine part (VPT's and VAPT's
    /// fresh fc_norm, weight 1 and bias 0, with the backbone's eps): (B, T, D) → (B, D).
    /// </summary>
    public static Tensor MeanTokens(Tensor tokens, IVisionBackbone backbone)
    {
        using var mean = MeanAfterCls(tokens);
        return nn.functional.layer_norm(mean, [backbone.Spec.Dim], eps: backbone.Spec.LayerNormEps);
    }

    /// <summary>The mean of every token after CLS, prompts included, through the backbone's pretrained final norm (GatedPT's vit_mae.py).</summary>
    public static Tensor MeanTokensWithFinalNorm(Tensor tokens, IVisionBackbone backbone)
    {
        using var mean = MeanAfterCls(tokens);
        return backbone.FinalNorm(mean);
    }

    private static Tensor MeanAfterCls(Tensor tokens)
    {
        using var rest = tokens.narrow(1, 1, tokens.size(1) - 1);
        return rest.mean([1]);
    }
}
