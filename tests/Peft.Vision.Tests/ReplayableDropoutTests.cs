using Peft.Abstractions.Methods;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Vision.Tests;

/// <summary>The contracts' dropout: libtorch's own draws, or masks replayed from a source (the plugins' parity tests).</summary>
public class ReplayableDropoutTests
{
    [Fact]
    public void Without_a_source_it_is_libtorchs_dropout_and_the_identity_in_eval_mode()
    {
        using var scope = NewDisposeScope();
        using var dropout = new ReplayableDropout(0.25);
        var input = ones(64, 100);
        manual_seed(5);
        var dropped = dropout.forward(input);
        var zeroed = dropped.eq(0).to(float64).mean().item<double>();
        Assert.InRange(zeroed, 0.22, 0.28); // 6,400 draws at p = 0.25: ±3 standard deviations is ±0.016
        var kept = dropped.masked_select(dropped.ne(0));
        Assert.True(kept.allclose(full_like(kept, 1 / 0.75)), "kept values are scaled by 1/(1 - p)");
        dropout.eval();
        Assert.True(dropout.forward(input).Equals(input));
    }

    [Fact]
    public void Channelwise_draws_zero_whole_channels_of_each_sample()
    {
        using var scope = NewDisposeScope();
        using var dropout = new ReplayableDropout(0.5, channelwise: true);
        manual_seed(6);
        var dropped = dropout.forward(ones(4, 32, 3, 3));
        var perChannel = dropped.amax([2, 3]).sub(dropped.amin([2, 3])); // 0 where a channel is all zero or all kept
        Assert.True(perChannel.eq(0).all().item<bool>(), "a channel was partly dropped");
        var zeroChannels = dropped.amax([2, 3]).eq(0).sum().item<long>();
        Assert.InRange(zeroChannels, 34, 94); // 128 channels at p = 0.5: 64 ± 30 (more than 5 standard deviations)
        Assert.Equal(new long[] { 4, 32, 1, 1 }, dropout.MaskShape(ones(4, 32, 3, 3)));
    }

    [Fact]
    public void A_source_supplies_the_masks_in_training_only_and_kept_values_scale_by_one_over_keep()
    {
        using var scope = NewDisposeScope();
        using var dropout = new ReplayableDropout(0.2);
        var mask = tensor(new float[] { 1, 0, 1, 1, 0, 1 }).view(2, 3);
        var calls = 0;
        dropout.MaskSource = shape =>
        {
            calls++;
            Assert.Equal(new long[] { 2, 3 }, shape);
            return mask;
        };
        var input = tensor(new float[] { 1, 2, 3, 4, 5, 6 }).view(2, 3);
        var expected = tensor(new float[] { 1 / 0.8f, 0, 3 / 0.8f, 4 / 0.8f, 0, 6 / 0.8f }).view(2, 3);
        Assert.True(dropout.forward(input).allclose(expected, 1e-6, 1e-6));
        Assert.Equal(1, calls);
        Assert.Equal(new float[] { 1, 0, 1, 1, 0, 1 }, mask.data<float>().ToArray()); // the source's mask is left as it was

        dropout.eval();
        Assert.True(dropout.forward(input).Equals(input));
        Assert.Equal(1, calls);
    }

    [Fact]
    public void A_mask_of_the_wrong_shape_and_a_bad_probability_are_refused()
    {
        using var scope = NewDisposeScope();
        using var dropout = new ReplayableDropout(0.5) { MaskSource = _ => ones(3) };
        var error = Assert.Throws<InvalidOperationException>(() => dropout.forward(ones(2, 3)));
        Assert.Contains("expected [2, 3]", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplayableDropout(1.0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReplayableDropout(double.NaN));
    }
}
