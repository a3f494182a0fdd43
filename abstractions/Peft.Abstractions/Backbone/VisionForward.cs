using Peft.Torch;

namespace Peft.Abstractions.Backbone;

/// <summary>What one forward pass produced; its tensors belong to the caller's dispose scope.</summary>
public sealed class ForwardTrace
{
    /// <summary>Tokens after the last block, before the final norm (B, T, D).</summary>
    public required Tensor Tokens { get; init; }

    /// <summary>The pooled feature the head reads (B, D).</summary>
    public required Tensor Pooled { get; init; }

    /// <summary>Features of the blocks whose capture was requested, by block index.</summary>
    public IReadOnlyDictionary<int, BlockFeatures> Blocks { get; init; } = new Dictionary<int, BlockFeatures>();
}

/// <summary>The one forward loop every method shares: the backbone's seams with the hooks between them.</summary>
public static class VisionForward
{
    public static ForwardTrace Forward(this IVisionBackbone backbone, Tensor images, IBackboneHooks hooks)
    {
        var x = hooks.AfterEmbedding(backbone.Embed(images));
        var captured = new Dictionary<int, BlockFeatures>();
        for (var i = 0; i < backbone.Spec.Depth; i++)
        {
            var input = hooks.BeforeBlock(i, x);
            BlockFeatures? features = null;
            if (hooks.CaptureFeatures(i)) captured[i] = features = new BlockFeatures();
            var output = backbone.Block(i, input, hooks.AttentionTemperature(i), features, hooks.QkvBiasDelta(i));
            x = hooks.AfterBlock(i, input, output);
        }
        return new ForwardTrace { Tokens = x, Pooled = hooks.Pool(x, backbone), Blocks = captured };
    }
}
