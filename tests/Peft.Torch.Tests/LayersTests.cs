using static Peft.Torch.torch;
using static Peft.Torch.torch.nn;

namespace Peft.Torch.Tests;

public class LayersTests
{
    private static (double min, double max, double std) Stats(Tensor t)
    {
        var v = t.to(float64).data<double>();
        var mean = v.Average();
        return (v.Min(), v.Max(), Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / v.Length));
    }

    [Fact]
    public void Linear_computes_x_w_transposed_plus_b()
    {
        using var layer = new Linear(2, 3);
        using (no_grad())
        {
            layer.weight.copy_(tensor(new float[] { 1, 2, 3, 4, 5, 6 }, 3, 2));
            layer.bias!.copy_(tensor(new float[] { 0.5f, -1, 0 }));
        }
        using var x = tensor(new float[] { 1, 1, 2, -1 }, 2, 2);
        using var y = layer.call(x);
        Assert.Equal(new float[] { 3.5f, 6, 11, 0.5f, 1, 4 }, y.data<float>());
        Assert.Equal("Linear(in_features=2, out_features=3, bias=True)", layer.ToString());
    }

    [Fact]
    public void Linear_and_conv_initialise_as_pytorch_from_the_fan_in()
    {
        manual_seed(1);
        using var layer = new Linear(256, 512);
        // kaiming_uniform(a=√5): U(−1/√fan_in, 1/√fan_in), whose standard deviation is bound/√3.
        var bound = 1 / Math.Sqrt(256);
        var (min, max, std) = Stats(layer.weight);
        Assert.InRange(min, -bound, -0.99 * bound);
        Assert.InRange(max, 0.99 * bound, bound);
        Assert.InRange(std, 0.99 * bound / Math.Sqrt(3), 1.01 * bound / Math.Sqrt(3));
        var (bmin, bmax, _) = Stats(layer.bias!);
        Assert.InRange(bmin, -bound, -0.9 * bound);
        Assert.InRange(bmax, 0.9 * bound, bound);

        using var conv = new Conv2d(8, 64, 3, groups: 2);
        Assert.Equal(new long[] { 64, 4, 3, 3 }, conv.weight.shape);
        var convBound = 1 / Math.Sqrt(4 * 3 * 3); // fan_in = in/groups · k²
        var (cmin, cmax, _) = Stats(conv.weight);
        Assert.InRange(cmin, -convBound, -0.98 * convBound);
        Assert.InRange(cmax, 0.98 * convBound, convBound);
        Assert.Throws<ArgumentException>(() => new Conv2d(3, 4, 3, groups: 2));
    }

    [Fact]
    public void Conv2d_output_shape_follows_stride_and_padding()
    {
        using var conv = new Conv2d(4, 6, 3, stride: 2, padding: 1, groups: 2);
        using var x = randn(2, 4, 9, 8);
        using var y = conv.call(x);
        Assert.Equal(new long[] { 2, 6, 5, 4 }, y.shape); // ⌊(n + 2 − 3)/2⌋ + 1
        using var patch = new Conv2d(3, 8, 4, stride: 4, bias: false);
        Assert.Null(patch.bias);
        using var p = patch.call(randn(1, 3, 16, 16));
        Assert.Equal(new long[] { 1, 8, 4, 4 }, p.shape);
    }

    [Fact]
    public void LayerNorm_starts_as_plain_normalisation()
    {
        using var norm = new LayerNorm(5);
        Assert.Equal(new float[] { 1, 1, 1, 1, 1 }, norm.weight!.data<float>());
        Assert.Equal(new float[] { 0, 0, 0, 0, 0 }, norm.bias!.data<float>());
        using var x = randn(3, 5).mul(4.0).add(2.0);
        using var y = norm.call(x);
        using var mean = y.mean(1);
        using var variance = y.var(1, unbiased: false);
        Assert.All(mean.data<float>(), m => Assert.InRange(m, -1e-5f, 1e-5f));
        Assert.All(variance.data<float>(), v => Assert.InRange(v, 0.999f, 1.0001f));
        using var plain = new LayerNorm([2, 5], elementwise_affine: false);
        Assert.Empty(plain.parameters());
    }

    [Fact]
    public void Dropout_drops_and_rescales_in_training_and_passes_through_in_eval()
    {
        manual_seed(3);
        using var drop = new Dropout(0.25);
        using var x = ones(100_000);
        using var y = drop.call(x);
        var values = y.data<float>();
        var zeros = values.Count(v => v == 0) / (double)values.Length;
        Assert.InRange(zeros, 0.245, 0.255);
        Assert.All(values.Where(v => v != 0), v => Assert.Equal(1 / 0.75f, v, 5));
        drop.eval();
        using var z = drop.call(x);
        Assert.True(z.equal(x));
        Assert.NotSame(x, z);

        using var drop2d = new Dropout2d(0.5);
        using var maps = ones(4, 64, 3, 3);
        using var m = drop2d.call(maps);
        using var perChannel = m.sum([2L, 3L]);
        Assert.All(perChannel.data<float>(), s => Assert.True(s == 0 || Math.Abs(s - 18) < 1e-4, $"channel sum {s}"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(1.5));
    }

    [Fact]
    public void Activation_modules_match_their_functions()
    {
        using var x = tensor(new float[] { -2, -0.5f, 0, 1.5f });
        using var relu = new ReLU().call(x);
        Assert.Equal(new float[] { 0, 0, 0, 1.5f }, relu.data<float>());
        using var gelu = new GELU().call(x);
        using var expected = nn.functional.gelu(x);
        Assert.True(gelu.equal(expected));
        using var id = new Identity().call(x);
        Assert.NotSame(x, id);
        Assert.True(id.equal(x));
    }

    [Fact]
    public void Init_functions_fill_parameters_in_place_with_the_documented_spread()
    {
        manual_seed(5);
        using var w = new Parameter(empty([400, 500]));
        Assert.Same(w, init.xavier_uniform_(w, gain: 2));
        var xb = 2 * Math.Sqrt(6.0 / (400 + 500));
        var (min, max, _) = Stats(w);
        Assert.InRange(min, -xb, -0.99 * xb);
        Assert.InRange(max, 0.99 * xb, xb);

        init.kaiming_normal_(w, mode: init.FanMode.FanOut, nonlinearity: init.NonlinearityType.ReLU);
        Assert.InRange(Stats(w).std, 0.99 * Math.Sqrt(2.0 / 400), 1.01 * Math.Sqrt(2.0 / 400));
        init.kaiming_uniform_(w, nonlinearity: init.NonlinearityType.ReLU);
        Assert.InRange(Stats(w).max, 0.99 * Math.Sqrt(6.0 / 500), Math.Sqrt(6.0 / 500));

        // N(0, 1) truncated to [−2, 2]: variance 1 − 2·2·φ(2)/(Φ(2) − Φ(−2)) = 0.773741, std 0.879626.
        init.trunc_normal_(w, std: 1, a: -2, b: 2);
        (min, max, var std) = Stats(w);
        Assert.InRange(min, -2, -1.99);
        Assert.InRange(max, 1.99, 2);
        Assert.InRange(std, 0.879626 * 0.99, 0.879626 * 1.01);
        init.trunc_normal_(w, mean: 1, std: 0.02);
        Assert.InRange(Stats(w).std, 0.0198, 0.0202);

        init.constant_(w, 0.5);
        Assert.Equal(0.5 * 200_000, w.sum().item(), 6);
        init.zeros_(w);
        init.ones_(w.narrow(0, 0, 1));
        Assert.Equal(500.0, w.sum().item());
        Assert.True(w.requires_grad);
        Assert.Equal(5.0 / 3, init.calculate_gain(init.NonlinearityType.Tanh));
        Assert.Equal(Math.Sqrt(2.0 / (1 + 0.2 * 0.2)), init.calculate_gain(init.NonlinearityType.LeakyReLU, 0.2));
        Assert.Throws<ArgumentException>(() => init.xavier_uniform_(zeros(3)));
    }
}
