using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Abstractions;

/// <summary>Initialisations TorchSharp 0.107 gets wrong, written as PyTorch's torch.nn.init does them.</summary>
public static class TensorInit
{
    /// <summary>
    /// Fills <paramref name="tensor"/> with N(mean, std²) truncated to [a, b], in place (PyTorch's nn.init.trunc_normal_,
    /// which timm uses for ViT weights): uniform on [2Φ(α)−1, 2Φ(β)−1], erfinv, scale by std·√2, shift by mean, clamp.
    /// TorchSharp 0.107's <c>nn.init.trunc_normal_</c> multiplies by the mean and adds the std (and drops the √2), so
    /// with mean 0 it fills the tensor with the constant std. The uniform draw is made in float64: in float32 it reaches
    /// ±1 about once in 10⁷ draws, where erfinv is infinite and the clamp leaves a value at the bound (±100 std for
    /// timm's std 0.02).
    /// </summary>
    public static Tensor trunc_normal_(Tensor tensor, double mean = 0.0, double std = 1.0, double a = -2.0, double b = 2.0)
    {
        static double Cdf(double x) => (1.0 + Erf(x / Math.Sqrt(2.0))) / 2.0;
        var l = Cdf((a - mean) / std);
        var u = Cdf((b - mean) / std);
        using var noGrad = no_grad();
        using var draw = empty(tensor.shape, ScalarType.Float64, tensor.device);
        draw.uniform_(2 * l - 1, 2 * u - 1).erfinv_().mul_(std * Math.Sqrt(2.0)).add_(mean).clamp_(a, b);
        tensor.copy_(draw);
        return tensor;
    }

    // Abramowitz–Stegun 7.1.26 is too coarse for tail probabilities; the Taylor/continued-fraction pair below is exact to
    // double precision, which keeps the truncation points where PyTorch (math.erf) puts them.
    private static double Erf(double x)
    {
        if (x < 0) return -Erf(-x);
        if (x < 2.5)
        {
            // erf(x) = 2/√π · Σ (−1)ⁿ x^(2n+1) / (n! (2n+1))
            double sum = x, term = x;
            for (var n = 1; n < 60; n++)
            {
                term *= -x * x / n;
                var next = term / (2 * n + 1);
                sum += next;
                if (Math.Abs(next) < 1e-17 * Math.Abs(sum)) break;
            }
            return 2 / Math.Sqrt(Math.PI) * sum;
        }
        // erfc(x) = e^(−x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))), Lentz-free backward evaluation.
        var fraction = 0.0;
        for (var k = 60; k >= 1; k--) fraction = k / 2.0 / (x + fraction);
        return 1 - Math.Exp(-x * x) / Math.Sqrt(Math.PI) / (x + fraction);
    }
}
