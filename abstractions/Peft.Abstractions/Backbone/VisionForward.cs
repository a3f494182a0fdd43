using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

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
    /// <remarks>
    /// Each block's input and output are released as soon as the next tokens exist (autograd keeps what backward
    /// needs), so a pass holds one block's tokens at a time rather than every block's. Hooks return their argument
    /// or a new tensor; one that needs a tensor after the hook returns keeps an alias of it (BlockFeatures does).
    /// </remarks>
    public static ForwardTrace Forward(this IVisionBackbone backbone, Tensor images, IBackboneHooks hooks)
    {
        var embedded = backbone.Embed(images);
        var x = hooks.AfterEmbedding(embedded);
        Release(embedded, x);
        var captured = new Dictionary<int, BlockFeatures>();
        for (var i = 0; i < backbone.Spec.Depth; i++)
        {
            var input = hooks.BeforeBlock(i, x);
            BlockFeatures? features = null;
            if (hooks.CaptureFeatures(i)) captured[i] = features = new BlockFeatures();
            var output = backbone.Block(i, input, hooks.AttentionTemperature(i), features, hooks.QkvBiasDelta(i));
            var next = hooks.AfterBlock(i, input, output);
            Release(x, next);
            if (!ReferenceEquals(input, x)) Release(input, next);
            if (!ReferenceEquals(output, x) && !ReferenceEquals(output, input)) Release(output, next);
            x = next;
        }
        return new ForwardTrace { Tokens = x, Pooled = hooks.Pool(x, backbone), Blocks = captured };
    }

    private static void Release(Tensor t, Tensor kept)
    {
        if (!ReferenceEquals(t, kept)) t.Dispose();
    }
}
