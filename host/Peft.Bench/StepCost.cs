using Peft.Abstractions.Backbone;

namespace Peft.Bench;

/// <summary>
/// Floating-point operations of one step, counted from the matrix products (2·m·k·n each), which are nearly all
/// of a ViT's work: per block and image with T tokens, qkv 6TD², attention 4T²D, projection 2TD², MLP 4TD·H; the
/// patch embedding 2·N·(C·p²)·D. Backward costs the forward again for the activation gradients, and once more for
/// the weight gradients of tuned matrices (full fine-tuning only: biases, prompts and generators are negligible).
/// </summary>
public static class StepCost
{
    /// <summary>Prompt tokens each block sees with the method's default options.</summary>
    public static int[] PromptsPerBlock(string method, int depth) => method switch
    {
        "vpt-shallow" or "vpt-deep" or "gated" or "vapt" => Enumerable.Repeat(10, depth).ToArray(),
        "davpt" or "davpt+" => Enumerable.Range(0, depth).Select(l => l == depth - 1 ? 10 : 20).ToArray(),
        _ => new int[depth],
    };

    public static double ForwardFlops(VitSpec spec, string method, int batch)
    {
        double d = spec.Dim, h = spec.MlpHidden, n = spec.NumPatches;
        var flops = 2 * n * spec.Channels * spec.PatchSize * spec.PatchSize * d;
        foreach (var p in PromptsPerBlock(method, spec.Depth))
        {
            var t = 1 + n + p;
            flops += 6 * t * d * d + 4 * t * t * d + 2 * t * d * d + 4 * t * d * h;
        }
        return flops * batch;
    }

    /// <summary>Forward, plus the backward the method needs: none through the frozen backbone for linear probing.</summary>
    public static double TrainFlops(VitSpec spec, string method, int batch) => ForwardFlops(spec, method, batch) * method switch
    {
        "linear" => 1,
        "full" => 3,
        _ => 2,
    };
}
