using static TorchSharp.torch;

namespace Peft.Abstractions.Backbone;

/// <summary>
/// How a backbone's final tokens become the head's feature, written once for every method. The official code reads a
/// supervised or MoCo v3 ViT at the CLS token after the final norm, and an MAE ViT as the mean of every token after CLS
/// (prompts included) followed by the norm (VPT's and VAPT's vit_mae.py, "original" pool; GatedPT the same).
/// </summary>
public static class Readout
{
    /// <summary>The read-out the backbone's kind calls for: <see cref="MeanTokens"/> for MAE, else <see cref="ClsToken"/>.</summary>
    public static Tensor ByKind(Tensor tokens, IVisionBackbone backbone) =>
        backbone.Kind == BackboneKind.Mae ? MeanTokens(tokens, backbone) : ClsToken(tokens, backbone);

    /// <summary>The CLS token after the final norm: (B, T, D) → (B, D).</summary>
    public static Tensor ClsToken(Tensor tokens, IVisionBackbone backbone)
    {
        using var normed = backbone.FinalNorm(tokens);
        return normed.select(1, 0);
    }

    /// <summary>The final norm of the mean of every token after CLS, prompts included: (B, T, D) → (B, D).</summary>
    public static Tensor MeanTokens(Tensor tokens, IVisionBackbone backbone)
    {
        using var rest = tokens.narrow(1, 1, tokens.size(1) - 1);
        using var mean = rest.mean([1]);
        return backbone.FinalNorm(mean);
    }
}
