using Peft.Abstractions.Backbone;
using TorchSharp;
using static TorchSharp.torch;

// libtorch's default generator and grad mode are process-wide: tests that seed and draw must not interleave.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Peft.Vision.Tests;

internal static class TestSupport
{
    /// <summary>A small ViT: 32 px, patch 8 (a 4×4 grid), width 48 (divisible by 4 for sin-cos), 2 blocks of 3 heads.</summary>
    public static readonly VitSpec Small = new(ImageSize: 32, PatchSize: 8, Channels: 3, Dim: 48, Depth: 2, Heads: 3);

    /// <summary>A ViT whose every parameter (norms and biases included) is random, so no mapping error can hide behind a 0 or a 1.</summary>
    public static VisionTransformer RandomVit(VitSpec? spec = null, BackboneKind kind = BackboneKind.Supervised, long seed = 7)
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

    public static Tensor Images(int batch = 2, VitSpec? spec = null, long seed = 11)
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
        Assert.Equal(Bytes(expected), Bytes(actual));
    }

    /// <summary>A tensor's elements in row-major order as raw bytes, whatever its strides or device.</summary>
    public static byte[] Bytes(Tensor t)
    {
        using var detached = t.detach();
        using var host = detached.cpu();
        using var dense = host.contiguous();
        return dense.bytes.ToArray();
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        using var d = a.sub(b);
        using var abs = d.abs();
        using var max = abs.max();
        return max.ToDouble();
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
        // state_dict's tensors are the modules' own: read, never disposed.
        var e = expected.state_dict();
        var a = actual.state_dict();
        Assert.Equal(e.Keys, a.Keys);
        foreach (var (key, t) in e)
        {
            Assert.True(t.shape.SequenceEqual(a[key].shape), $"{key}: [{string.Join(", ", t.shape)}] vs [{string.Join(", ", a[key].shape)}]");
            Assert.True(Bytes(t).AsSpan().SequenceEqual(Bytes(a[key])), $"{key} differs");
        }
    }
}

internal sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("peft-vision-tests-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
