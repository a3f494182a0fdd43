using static Peft.Torch.torch;

namespace Peft.Abstractions.Methods;

/// <summary>Prompt initialisations shared by the VPT family.</summary>
public static class PromptInit
{
    /// <summary>
    /// VPT's bound v = √(6 / (3·patch² + d)): xavier-uniform treating a prompt as a patch of 3·patch²
    /// pixels feeding a d-wide embedding (vpt_gated.md §1b; 0.0625 for ViT-B/16).
    /// </summary>
    public static double VptUniformBound(int patchSize, int promptDim) => Math.Sqrt(6.0 / (3 * patchSize * patchSize + promptDim));

    /// <summary>A new (shape) parameter drawn from uniform(−v, v) with VPT's bound.</summary>
    public static nn.Parameter VptUniform(long[] shape, int patchSize, int promptDim)
    {
        var v = VptUniformBound(patchSize, promptDim);
        var p = new nn.Parameter(zeros(shape));
        nn.init.uniform_(p, -v, v);
        return p;
    }
}
