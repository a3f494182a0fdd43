using static Peft.Torch.torch;
using F = Peft.Torch.torch.nn.functional;

namespace Peft.Torch.Tests;

/// <summary>
/// Compares autograd's gradients with central finite differences in float64: for
/// L(x) = Σ w ⊙ f(x) with fixed, distinct weights w (so every output counts differently),
/// ∂L/∂xⱼ ≈ (L(x + h eⱼ) − L(x − h eⱼ)) / 2h, whose error is O(h²).
/// </summary>
internal static class FiniteDifference
{
    public static void AssertGradients(Func<Tensor[], Tensor> f, params Tensor[] inputs)
    {
        const double h = 1e-6, tolerance = 1e-6;
        using var scope = NewDisposeScope();
        var leaves = inputs.Select(x => x.to(float64).requires_grad_()).ToArray();
        var output = f(leaves);
        var n = output.numel();
        var weights = tensor(Enumerable.Range(0, (int)n).Select(j => 1.0 + 0.5 * Math.Sin(1.7 * j + 0.3)).ToArray(), output.shape);
        double Loss(Tensor[] xs)
        {
            using var inner = NewDisposeScope();
            return (f(xs) * weights).sum().item();
        }
        (output * weights).sum().backward();

        for (var k = 0; k < leaves.Length; k++)
        {
            var analytic = leaves[k].grad!.data<double>();
            var values = leaves[k].data<double>();
            var numeric = new double[values.Length];
            using (no_grad())
                for (var j = 0; j < values.Length; j++)
                {
                    double Shifted(double delta)
                    {
                        var v = (double[])values.Clone();
                        v[j] += delta;
                        var xs = (Tensor[])leaves.Clone();
                        xs[k] = tensor(v, leaves[k].shape);
                        return Loss(xs);
                    }
                    numeric[j] = (Shifted(h) - Shifted(-h)) / (2 * h);
                }
            Assert.True(numeric.Any(g => Math.Abs(g) > 1e-3), $"input {k}: the function does not depend on it, the check would be vacuous");
            for (var j = 0; j < values.Length; j++)
                Assert.True(Math.Abs(analytic[j] - numeric[j]) <= tolerance * (1 + Math.Abs(numeric[j])),
                    $"input {k}, element {j}: autograd {analytic[j]:R}, finite difference {numeric[j]:R}");
        }
    }

    /// <summary>A float64 tensor of deterministic, irregular values in about [−2, 2].</summary>
    public static Tensor Values(params long[] shape)
    {
        var n = (int)shape.Aggregate(1L, (a, b) => a * b);
        return tensor(Enumerable.Range(0, n).Select(j => 2 * Math.Sin(0.9 * j + 0.4) * Math.Cos(0.31 * j)).ToArray(), shape);
    }
}

public class GradientTests
{
    private static Tensor V(params long[] shape) => FiniteDifference.Values(shape);

    [Fact]
    public void Linear_gradients_match_finite_differences() =>
        FiniteDifference.AssertGradients(x => F.linear(x[0], x[1], x[2]), V(4, 3), V(5, 3), V(5));

    [Fact]
    public void Layer_norm_gradients_match_finite_differences() =>
        FiniteDifference.AssertGradients(x => F.layer_norm(x[0], [6], x[1], x[2]), V(3, 6), V(6), V(6));

    [Fact]
    public void Exact_gelu_gradient_matches_finite_differences() =>
        FiniteDifference.AssertGradients(x => F.gelu(x[0]), V(2, 7));

    [Fact]
    public void Softmax_gradient_matches_finite_differences() =>
        FiniteDifference.AssertGradients(x => F.softmax(x[0], -1), V(3, 5));

    [Fact]
    public void Grouped_conv2d_gradients_match_finite_differences() =>
        // 4 input channels in 2 groups, 6 output channels, 3×3 kernel, stride 2, padding 1.
        FiniteDifference.AssertGradients(x => F.conv2d(x[0], x[1], x[2], stride: 2, padding: 1, groups: 2),
            V(2, 4, 5, 5), V(6, 2, 3, 3), V(6));

    [Fact]
    public void Cross_entropy_gradient_matches_finite_differences()
    {
        using var target = tensor(new long[] { 2, 0, 4, 1 });
        FiniteDifference.AssertGradients(x => F.cross_entropy(x[0], target), V(4, 5));
    }

    [Fact]
    public void The_checker_rejects_a_wrong_gradient()
    {
        // relu's derivative at exactly 0 is taken as 0 by autograd; a function with a kink inside
        // the difference interval makes the checker fail, so a broken backward would be caught.
        using var x = tensor(new double[] { 0.0, 1.0 });
        Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => FiniteDifference.AssertGradients(v => F.relu(v[0]), x));
    }
}
