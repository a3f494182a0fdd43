using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Abstractions.Methods;

/// <summary>Prompt initialisations shared by the VPT family.</summary>
public static class PromptInit
{
    /// <summary>
    /// VPT's bound v = √(6 / (3·patch² + d)): xavier-uniform treating a prompt as a patch of 3·patch²
    /// pixels feeding a d-wide embedding (VPT's src/models/vit_prompt/vit.py; 0.0625 for ViT-B/16).
    /// </summary>
    public static double VptUniformBound(int patchSize, int promptDim) => Math.Sqrt(6.0 / (3 * patchSize * patchSize + promptDim));

    /// <summary>A new (shape) parameter drawn from uniform(−v, v) with VPT's bound.</summary>
    public static Parameter VptUniform(long[] shape, int patchSize, int promptDim)
    {
        var v = VptUniformBound(patchSize, promptDim);
        using var data = empty(shape);
        var p = new Parameter(data);
        using (no_grad()) nn.init.uniform_(p, -v, v);
        return p;
    }
}
