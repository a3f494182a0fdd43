using Peft.Abstractions.Backbone;
using Peft.Torch;
using static Peft.Torch.torch;

// libtorch's default generator and grad mode are process-wide: tests that seed and draw must not interleave.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Peft.Vision.Tests;

internal static class TestSupport
{
    /// <summary>A small ViT: 32 px, patch 8 (a 4×4 grid), width 48 (divisible by 4 for sin-cos), 2 blocks of 3 heads.</summary>
    public static readonly VitSpec Small = new(ImageSize: 32, PatchSize: 8, Channels: 3, Dim: 48, Depth: 2, Heads: 3);

    /// <summary>A ViT whose every parameter (norms and biases included) is random, so no mapping error can hide behind a 0 or a 1.</summary>
    public static VisionTransformer RandomVit(VitSpec? spec = null, BackboneKind kind = BackboneKind.Supervised, ulong seed = 7)
    {
        manual_seed(seed);
        var vit = new VisionTransformer(spec ?? Small, kind);
        using (no_grad())
            foreach (var (name, p) in vit.named_parameters())
            {
                using var noise = randn(p.shape);
                using var scaled = noise.mul(0.1);
                p.copy_(scaled);
                if (name.Contains("norm", StringComparison.Ordinal) && name.EndsWith(".weight", StringComparison.Ordinal)) p.add_(1.0);
            }
        vit.eval();
        vit.InvalidateIdentity();
        return vit;
    }

    public static Tensor Images(int batch = 2, VitSpec? spec = null, ulong seed = 11)
    {
        var s = spec ?? Small;
        manual_seed(seed);
        return randn(batch, s.Channels, s.ImageSize, s.ImageSize);
    }

    /// <summary>The pooled CLS feature of the plain ViT, without gradients.</summary>
    public static Tensor Features(VisionTransformer vit, Tensor images)
    {
        using var _ = no_grad();
        return vit.forward_features(images);
    }

    public static void AssertBitwiseEqual(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.shape, actual.shape);
        Assert.Equal(expected.bytes(), actual.bytes());
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = a.sub(b);
        using var abs = d.abs();
        using var max = abs.max();
        return max.item();
    }

    public static void AssertClose(Tensor expected, Tensor actual, double tolerance)
    {
        Assert.Equal(expected.shape, actual.shape);
        var diff = MaxAbsDiff(expected, actual);
        Assert.True(diff <= tolerance, $"max |difference| {diff:g3} exceeds {tolerance:g3}");
    }

    public static void AssertDiffer(Tensor a, Tensor b, double atLeast = 1e-3)
    {
        var diff = MaxAbsDiff(a, b);
        Assert.True(diff >= atLeast, $"expected a difference of at least {atLeast:g3}, found {diff:g3}");
    }

    /// <summary>Every parameter of two ViTs is bit for bit the same.</summary>
    public static void AssertSameWeights(VisionTransformer expected, VisionTransformer actual)
    {
        using var e = expected.state_dict();
        using var a = actual.state_dict();
        Assert.Equal(e.Keys, a.Keys);
        foreach (var (key, t) in e)
        {
            Assert.True(t.shape.SequenceEqual(a[key].shape), $"{key}: {t.ShapeString} vs {a[key].ShapeString}");
            Assert.True(t.bytes().AsSpan().SequenceEqual(a[key].bytes()), $"{key} differs");
        }
    }
}

internal sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("peft-vision-tests-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
