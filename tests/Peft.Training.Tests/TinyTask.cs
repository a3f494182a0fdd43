using Peft.Abstractions.Backbone;
using Peft.Training.Data;
using Peft.Vision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Training.Tests;

/// <summary>
/// A tiny ViT and a trivially separable task: the class is the brightness of a noisy image. (A random
/// ViT's CLS token mostly averages the patches, so a task must survive averaging to be linearly
/// separable on frozen random features.)
/// </summary>
public static class TinyTask
{
    public static readonly VitSpec Spec = new(ImageSize: 16, PatchSize: 4, Channels: 1, Dim: 32, Depth: 2, Heads: 2);

    /// <summary>
    /// A backbone scaled like a trained one: unit-scale CLS token and residual stream (weights
    /// N(0, 1/fan_in)). timm's fresh init (std 0.02, CLS 1e-6) leaves the CLS stream so small that
    /// the final LayerNorm amplifies every bias change into the features, which no tuning survives.
    /// </summary>
    public static VisionTransformer Backbone(long seed = 1)
    {
        manual_seed(seed);
        var vit = new VisionTransformer(Spec);
        using var noGrad = no_grad();
        nn.init.normal_(vit.cls_token);
        nn.init.normal_(vit.pos_embed, std: 0.1);
        foreach (var (name, p) in vit.named_parameters())
            if (name.StartsWith("blocks.", StringComparison.Ordinal) && p.dim() == 2)
                nn.init.normal_(p, std: 1 / Math.Sqrt(p.size(1)));
        vit.eval();
        return vit;
    }

    /// <summary>(N, 1, 16, 16) images: noise around a brightness of (label − 1.5) (4 classes).</summary>
    public static (Tensor Images, Tensor Labels) Data(int count, long seed)
    {
        manual_seed(seed);
        using var scope = NewDisposeScope();
        var labels = randint(0, 4, [count], ScalarType.Int64);
        var level = labels.to(float32).sub(1.5).view(count, 1, 1, 1);
        var images = randn([count, 1, 16, 16]).mul(0.5).add(level);
        return (images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }

    public static InMemoryBatchSource Source(int count, long seed, int batchSize, bool shuffle)
    {
        var (images, labels) = Data(count, seed);
        using (images)
        using (labels)
            return new InMemoryBatchSource(images, labels, batchSize, shuffle, (int)seed);
    }
}
