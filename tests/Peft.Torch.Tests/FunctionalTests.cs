using static Peft.Torch.torch;
using F = Peft.Torch.torch.nn.functional;

namespace Peft.Torch.Tests;

/// <summary>Operators against closed forms and values worked out by hand.</summary>
public class FunctionalTests
{
    private static void Close(double[] expected, double[] actual, double tolerance = 1e-12)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var k = 0; k < expected.Length; k++)
            Assert.True(Math.Abs(expected[k] - actual[k]) <= tolerance, $"element {k}: expected {expected[k]:R}, got {actual[k]:R}");
    }

    [Fact]
    public void Gelu_is_x_times_the_normal_cdf()
    {
        using var x = tensor(new double[] { 1, -1, 0 });
        using var exact = F.gelu(x);
        // Φ(1) = 0.8413447460685429, Φ(−1) = 1 − Φ(1).
        Close([0.8413447460685429, -(1 - 0.8413447460685429), 0], exact.data<double>());
        using var approx = F.gelu(x, tanh_approximation: true);
        var tanhForm = 0.5 * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (1 + 0.044715)));
        Assert.Equal(tanhForm, approx.data<double>()[0], 12);
    }

    [Fact]
    public void Layer_norm_of_a_hand_vector()
    {
        using var x = tensor(new double[] { 1, 2, 3, 4 });
        using var w = tensor(new double[] { 1, 1, 2, 2 });
        using var b = tensor(new double[] { 0, 0, 0, 1 });
        using var y = F.layer_norm(x, [4], w, b, eps: 1e-5);
        // mean 2.5, biased variance 1.25
        var s = Math.Sqrt(1.25 + 1e-5);
        Close([-1.5 / s, -0.5 / s, 2 * 0.5 / s, 2 * 1.5 / s + 1], y.data<double>());
    }

    [Fact]
    public void Softmax_of_one_two_three()
    {
        using var x = tensor(new double[] { 1, 2, 3 });
        using var y = F.softmax(x, 0);
        Close([0.09003057317038046, 0.24472847105479764, 0.6652409557748219], y.data<double>(), 1e-15);
        using var lse = x.logsumexp(0);
        Assert.Equal(3 + Math.Log(1 + Math.Exp(-1) + Math.Exp(-2)), lse.item(), 14);
    }

    [Fact]
    public void Cross_entropy_is_minus_log_softmax_of_the_target()
    {
        using var logits = tensor(new double[] { 1, 2, 3, 1, 0, -1 }, 2, 3);
        using var target = tensor(new long[] { 2, 1 });
        var z = Math.Exp(1) + Math.Exp(2) + Math.Exp(3);
        var first = -Math.Log(Math.Exp(3) / z);
        var second = -Math.Log(Math.Exp(0) / (Math.Exp(1) + 1 + Math.Exp(-1)));
        using var each = F.cross_entropy(logits, target, reduction: F.Reduction.None);
        Close([first, second], each.data<double>());
        using var mean = F.cross_entropy(logits, target);
        Assert.Equal((first + second) / 2, mean.item(), 12);
        using var smoothed = F.cross_entropy(logits, target, reduction: F.Reduction.Sum, label_smoothing: 0.3);
        // (1 − ε)·CE + ε·mean over classes of −log softmax
        using var logp = F.log_softmax(logits, 1);
        var lp = logp.data<double>();
        var smooth = 0.7 * (first + second) + 0.3 * -(lp.Take(3).Sum() + lp.Skip(3).Sum()) / 3;
        Assert.Equal(smooth, smoothed.item(), 12);
    }

    [Fact]
    public void Conv2d_hand_example_and_groups()
    {
        using var x = tensor(new double[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, 1, 1, 3, 3);
        using var w = tensor(new double[] { 1, 2, 3, 4 }, 1, 1, 2, 2);
        using var b = tensor(new double[] { 0.5 });
        using var y = F.conv2d(x, w, b);
        // 1·1+2·2+4·3+5·4 = 37, 2+6+15+24 = 47, 4+10+21+32 = 67, 5+12+24+36 = 77
        Assert.Equal(new double[] { 37.5, 47.5, 67.5, 77.5 }, y.data<double>());
        using var padded = F.conv2d(x, w, null, stride: 2, padding: 1);
        // windows at (−1,−1), (−1,1), (1,−1), (1,1): only the in-image taps count
        Assert.Equal(new double[] { 4 * 1, 3 * 2 + 4 * 3, 2 * 4 + 4 * 7, 1 * 5 + 2 * 6 + 3 * 8 + 4 * 9 }, padded.data<double>());

        // Two groups of one channel each: output c uses input c only.
        using var two = tensor(new double[] { 1, 2, 3, 4, 10, 20, 30, 40 }, 1, 2, 2, 2);
        using var k = tensor(new double[] { 2, 3 }, 2, 1, 1, 1);
        using var g = F.conv2d(two, k, groups: 2);
        Assert.Equal(new double[] { 2, 4, 6, 8, 30, 60, 90, 120 }, g.data<double>());
    }

    [Fact]
    public void Bilinear_upsampling_2x2_to_4x4_without_aligned_corners()
    {
        using var x = tensor(new double[] { 1, 2, 3, 4 }, 1, 1, 2, 2);
        using var y = F.interpolate_bilinear(x, 4, 4);
        // source coordinate (i + ½)/2 − ½ = −¼ (clamped to 0), ¼, ¾, 1¼ (clamped to the last pixel),
        // so each axis mixes with weights 0, ¼, ¾, 1: value = 1 + w(col) + 2·w(row).
        Assert.Equal(new double[]
        {
            1, 1.25, 1.75, 2,
            1.5, 1.75, 2.25, 2.5,
            2.5, 2.75, 3.25, 3.5,
            3, 3.25, 3.75, 4,
        }, y.data<double>());
        using var aligned = F.interpolate_bilinear(x, 3, 3, align_corners: true);
        Assert.Equal(new double[] { 1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4 }, aligned.data<double>());
    }

    [Fact]
    public void Norms_and_argmax()
    {
        using var v = tensor(new double[] { 3, -4 });
        Assert.Equal(5.0, v.norm().item());
        Assert.Equal(7.0, v.norm(1).item());
        Assert.Equal(4.0, v.norm(double.PositiveInfinity).item());
        using var m = tensor(new double[] { 1, 5, 2, 7, 0, 3 }, 2, 3);
        using var rows = m.norm(2, dim: 1);
        Close([Math.Sqrt(30), Math.Sqrt(58)], rows.data<double>());
        Assert.Equal(3L, m.argmax().item<long>());
        using var am = m.argmax(1);
        Assert.Equal(new long[] { 1, 0 }, am.data<long>());
        using var am0 = m.argmax(0, keepdim: true);
        Assert.Equal(new long[] { 1, 3 }, am0.shape);
        Assert.Equal(new long[] { 1, 0, 1 }, am0.data<long>());
    }

    [Fact]
    public void Joining_and_indexing_give_hand_values()
    {
        using var a = arange(0, 6).view(2, 3);
        using var b = arange(6, 12).view(2, 3);
        using var s = stack([a, b], 1);
        Assert.Equal(new long[] { 2, 2, 3 }, s.shape);
        Assert.Equal(new long[] { 0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11 }, s.data<long>());
        using var c = cat([a, b]);
        Assert.Equal(new long[] { 4, 3 }, c.shape);
        using var n = c.narrow(0, 1, 2);
        Assert.Equal(new long[] { 3, 4, 5, 6, 7, 8 }, n.data<long>());
        using var idx = tensor(new long[] { 3, 0, 3 });
        using var sel = c.index_select(0, idx);
        Assert.Equal(new long[] { 9, 10, 11, 0, 1, 2, 9, 10, 11 }, sel.data<long>());
        using var gi = tensor(new long[] { 1, 0, 1 }, 1, 3);
        using var g = a.gather(0, gi);
        Assert.Equal(new long[] { 3, 1, 5 }, g.data<long>());
        using var p = arange(0, 24).view(2, 3, 4).permute(2, 0, 1).contiguous();
        // p[i, j, k] = j·12 + k·4 + i
        Assert.Equal(new long[] { 0, 4, 8, 12, 16, 20, 1, 5, 9 }, p.data<long>().Take(9).ToArray());
        using var e = tensor(new long[] { 7, 8, 9 }).expand(2, 3);
        Assert.Equal(new long[] { 7, 8, 9, 7, 8, 9 }, e.contiguous().data<long>());
    }

    [Fact]
    public void Dtype_conversions_round_and_truncate_as_libtorch_does()
    {
        using var x = tensor(new double[] { 0.1, 2.7, -2.7, 255 });
        using var h = x.to(float16).to(float64);
        Assert.Equal(0.0999755859375, h.data<double>()[0]); // nearest binary16
        using var bf = x.to(bfloat16).to(float64);
        Assert.Equal(0.10009765625, bf.data<double>()[0]); // nearest bfloat16 (8-bit mantissa)
        using var f = x.to(float32).to(float64);
        Assert.Equal((double)0.1f, f.data<double>()[0]);
        using var i = x.to(int32);
        Assert.Equal(new[] { 0, 2, -2, 255 }, i.data<int>()); // toward zero
        using var u = x.narrow(0, 3, 1).to(uint8);
        Assert.Equal(new byte[] { 255 }, u.data<byte>());
        using var z = tensor(new double[] { 0, 0.5, -1 }).to(@bool);
        Assert.Equal(new byte[] { 0, 1, 1 }, z.data<byte>());
        Assert.Equal(Device.CPU, x.device);
        Assert.Equal("cpu", x.device.ToString());
        using var moved = x.to(Device.CPU);
        Assert.True(moved.equal(x));
    }
}
