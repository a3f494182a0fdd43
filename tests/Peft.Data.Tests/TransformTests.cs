using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Data.Tests;

public class TransformTests
{
    private static readonly Random Rng = new(0);

    private static Tensor Chw(float[] values, long c, long h, long w) => torch.tensor(values, [c, h, w]);

    private static void AssertClose(float[] expected, float[] actual, float tolerance = 1e-6f)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var k = 0; k < expected.Length; k++)
            Assert.True(Math.Abs(expected[k] - actual[k]) <= tolerance, $"element {k}: expected {expected[k]}, got {actual[k]}");
    }

    [Fact]
    public void Normalise_of_a_known_pixel_uses_ImageNet_statistics()
    {
        using var image = torch.tensor(new byte[] { 128, 64, 255 }, [1, 1, 3], ScalarType.Byte);
        using var x = new TransformPipeline(Normalize.ImageNet).Apply(image, Rng);
        Assert.Equal([3L, 1, 1], x.shape);
        Assert.Equal(ScalarType.Float32, x.dtype);
        AssertClose([(128 / 255f - 0.485f) / 0.229f, (64 / 255f - 0.456f) / 0.224f, (1f - 0.406f) / 0.225f], x.data<float>().ToArray(), 1e-5f);

        using var half = new TransformPipeline(Normalize.Half).Apply(image, Rng);
        AssertClose([(128 / 255f - 0.5f) / 0.5f, (64 / 255f - 0.5f) / 0.5f, 1f], half.data<float>().ToArray(), 1e-5f);
        using var gray = torch.tensor(new byte[] { 1 }, [1, 1, 1], ScalarType.Byte);
        Assert.Throws<ArgumentException>(() => new TransformPipeline(Normalize.ImageNet).Apply(gray, Rng));
    }

    [Fact]
    public void Resize_2x2_to_4x4_matches_PyTorch_bilinear_align_corners_false()
    {
        // torch.nn.functional.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), size=(4, 4), mode="bilinear", align_corners=False)
        using var x = Chw([1, 2, 3, 4], 1, 2, 2);
        using var y = new Resize(4).Apply(x, Rng);
        Assert.Equal([1L, 4, 4], y.shape);
        AssertClose([1.00f, 1.25f, 1.75f, 2.00f,
                     1.50f, 1.75f, 2.25f, 2.50f,
                     2.50f, 2.75f, 3.25f, 3.50f,
                     3.00f, 3.25f, 3.75f, 4.00f], y.data<float>().ToArray());
        Assert.Same(x, new Resize(2, 2).Apply(x, Rng)); // nothing to do
    }

    [Fact]
    public void Antialiased_resize_matches_PyTorch_and_PIL_and_equals_plain_bilinear_when_enlarging()
    {
        // Hand-computed from the filter PIL and interpolate(..., antialias=True) share, for [0, 1, 2, 3] → 2 samples:
        // output 0 has centre 1 and half-width 2, so inputs 0, 1, 2 weigh 0.75, 0.75, 0.25 before normalising: 5/7.
        using var x = Chw([0, 1, 2, 3], 1, 1, 4);
        using var y = new Resize(1, 2, Antialias: true).Apply(x, Rng);
        AssertClose([5 / 7f, 16 / 7f], y.data<float>().ToArray());
        using var plain = new Resize(1, 2).Apply(x, Rng);
        AssertClose([0.5f, 2.5f], plain.data<float>().ToArray()); // samples at 0.5 and 2.5 without the filter

        using var small = Chw([1, 2, 3, 4], 1, 2, 2);
        using var up = new Resize(4, antialias: true).Apply(small, Rng);
        using var upPlain = new Resize(4).Apply(small, Rng);
        Assert.True(up.allclose(upPlain));
        var random = torch.rand([3L, 17, 23]);
        using (random)
        using (var wide = new Resize(9, 31, Antialias: true).Apply(random, Rng))
            Assert.Equal([3L, 9, 31], wide.shape); // shrinks one axis, enlarges the other
    }

    [Fact]
    public void Resize_shorter_side_keeps_the_aspect_ratio_as_torchvision_does()
    {
        Assert.Equal((256, 341), ResizeShorter.OutputSize(300, 400, 256));
        Assert.Equal((341, 256), ResizeShorter.OutputSize(500, 375, 256));
        Assert.Equal((256, 256), ResizeShorter.OutputSize(10, 10, 256));
        using var x = torch.zeros([3L, 30, 40]);
        using var y = new ResizeShorter(15).Apply(x, Rng);
        Assert.Equal([3L, 15, 20], y.shape);
        Assert.Equal(256, TransformPipeline.FgvcResize(224));
        Assert.Equal(438, TransformPipeline.FgvcResize(384));
    }

    [Fact]
    public void Center_crop_rounds_half_to_even_like_torchvision()
    {
        Assert.Equal((2, 2), CenterCrop.Offsets(5, 6, 2, 3)); // round(1.5) = 2
        Assert.Equal((2, 0), CenterCrop.Offsets(7, 4, 2, 4)); // round(2.5) = 2
        Assert.Equal((1, 1), CenterCrop.Offsets(4, 4, 2, 2));

        using var x = Chw(Enumerable.Range(0, 16).Select(v => (float)v).ToArray(), 1, 4, 4);
        using var y = new CenterCrop(2).Apply(x, Rng);
        Assert.Equal([5f, 6, 9, 10], y.contiguous().data<float>().ToArray());
        var e = Assert.Throws<ArgumentException>(() => new CenterCrop(5).Apply(x, Rng));
        Assert.Contains("does not fit an image of 4x4", e.Message);
    }

    [Fact]
    public void Random_crop_stays_inside_and_follows_the_generator()
    {
        using var x = Chw(Enumerable.Range(0, 16).Select(v => (float)v).ToArray(), 1, 4, 4);
        var seen = new HashSet<float>();
        for (var s = 0; s < 50; s++)
        {
            using var y = new RandomCrop(3).Apply(x, new Random(s));
            var v = y.contiguous().data<float>().ToArray();
            Assert.Equal(9, v.Length);
            Assert.Equal(v[0] + 10, v[8]); // a 3×3 window of the 4×4 ramp
            seen.Add(v[0]);
            var r = new Random(s);
            Assert.Equal(r.Next(2) * 4 + r.Next(2), v[0]); // top, then left, from the generator
        }
        Assert.Equal([0f, 1, 4, 5], seen.Order());
    }

    [Fact]
    public void Horizontal_flip_mirrors_columns_with_probability_p()
    {
        using var x = Chw([1, 2, 3, 4, 5, 6], 1, 2, 3);
        using var flipped = new RandomHorizontalFlip(1.0).Apply(x, Rng);
        Assert.Equal([3f, 2, 1, 6, 5, 4], flipped.data<float>().ToArray());
        Assert.Same(x, new RandomHorizontalFlip(0.0).Apply(x, Rng));
        var flips = Enumerable.Range(0, 1000).Count(s => new Random(s).NextDouble() < 0.5);
        Assert.InRange(flips, 450, 550);
    }

    [Fact]
    public void Gray_becomes_three_channels_and_the_pipeline_outputs_float_CHW()
    {
        using var gray = torch.tensor(new byte[] { 0, 51, 102, 255 }, [2, 2, 1], ScalarType.Byte);
        using var x = new TransformPipeline(new ToChannels(3)).Apply(gray, Rng);
        Assert.Equal([3L, 2, 2], x.shape);
        AssertClose([0, 0.2f, 0.4f, 1, 0, 0.2f, 0.4f, 1, 0, 0.2f, 0.4f, 1], x.data<float>().ToArray());

        using var rgb = torch.tensor(new byte[] { 255, 0, 0, 0, 0, 255 }, [1, 2, 3], ScalarType.Byte);
        using var luma = new TransformPipeline(new ToChannels(1)).Apply(rgb, Rng);
        AssertClose([0.299f, 0.114f], luma.data<float>().ToArray());

        using var vtab = TransformPipeline.Vtab(8).Apply(gray, Rng);
        Assert.Equal([3L, 8, 8], vtab.shape);
        Assert.Throws<ArgumentException>(() => TransformPipeline.Vtab().Apply(x, Rng)); // float CHW is not an input image
    }

    [Fact]
    public void Pipeline_releases_its_intermediates_and_hands_the_result_to_the_callers_scope()
    {
        using var image = torch.tensor(new byte[6 * 6 * 3], [6, 6, 3], ScalarType.Byte);
        var pipeline = TransformPipeline.FgvcTrain(4);
        Tensor result;
        using (var scope = torch.NewDisposeScope())
        {
            result = pipeline.Apply(image, new Random(1));
            Assert.Equal(1, scope.DisposablesCount); // only the result: every intermediate was freed inside Apply
        }
        Assert.True(result.IsInvalid); // released with the scope
    }

    private sealed class Custom : IImageTransform
    {
        public Tensor Apply(Tensor image, Random rng) => image;
    }

    [Fact]
    public void A_pipeline_is_deterministic_only_when_every_step_says_so()
    {
        Assert.True(TransformPipeline.Vtab(28).IsDeterministic);
        Assert.True(TransformPipeline.FgvcEval(224).IsDeterministic);
        Assert.False(TransformPipeline.FgvcTrain(224).IsDeterministic);
        Assert.False(new TransformPipeline(new Resize(28), new RandomHorizontalFlip()).IsDeterministic);
        Assert.False(new TransformPipeline(new Resize(32), new RandomCrop(28)).IsDeterministic);
        // A step that does not declare itself deterministic is assumed random.
        Assert.False(new TransformPipeline(new Resize(28), new Custom()).IsDeterministic);
    }
}
