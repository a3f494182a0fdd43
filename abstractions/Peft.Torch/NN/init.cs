namespace Peft.Torch;

public static partial class torch
{
    public static partial class nn
    {
        /// <summary>
        /// Parameter initialisation (torch.nn.init). Every function fills its argument in place under
        /// no_grad, so it works on parameters that require grad, and returns it.
        /// </summary>
        public static class init
        {
            public enum FanMode { FanIn, FanOut }

            public enum NonlinearityType { Linear, Conv2d, Sigmoid, Tanh, ReLU, LeakyReLU, SELU }

            /// <summary>The recommended gain for a nonlinearity (PyTorch's table; <paramref name="param"/> is the leaky slope).</summary>
            public static double calculate_gain(NonlinearityType nonlinearity, double param = 0.01) => nonlinearity switch
            {
                NonlinearityType.Linear or NonlinearityType.Conv2d or NonlinearityType.Sigmoid => 1.0,
                NonlinearityType.Tanh => 5.0 / 3,
                NonlinearityType.ReLU => Math.Sqrt(2.0),
                NonlinearityType.LeakyReLU => Math.Sqrt(2.0 / (1 + param * param)),
                NonlinearityType.SELU => 3.0 / 4,
                _ => throw new ArgumentOutOfRangeException(nameof(nonlinearity)),
            };

            /// <summary>fan_in = size(1)·receptive field, fan_out = size(0)·receptive field (tensors of 2+ dims).</summary>
            public static (long fan_in, long fan_out) calculate_fan_in_and_fan_out(Tensor tensor)
            {
                var shape = tensor.Shape;
                if (shape.Length < 2)
                    throw new ArgumentException("fan in and fan out can not be computed for a tensor with fewer than 2 dimensions");
                long receptive = 1;
                for (var d = 2; d < shape.Length; d++) receptive *= shape[d];
                return (shape[1] * receptive, shape[0] * receptive);
            }

            private static long Fan(Tensor tensor, FanMode mode)
            {
                var (fanIn, fanOut) = calculate_fan_in_and_fan_out(tensor);
                return mode == FanMode.FanIn ? fanIn : fanOut;
            }

            private static Tensor NoGrad(Func<Tensor> fill)
            {
                using var guard = no_grad();
                return fill();
            }

            public static Tensor uniform_(Tensor tensor, double a = 0, double b = 1) => NoGrad(() => tensor.uniform_(a, b));
            public static Tensor normal_(Tensor tensor, double mean = 0, double std = 1) => NoGrad(() => tensor.normal_(mean, std));
            public static Tensor constant_(Tensor tensor, double value) => NoGrad(() => tensor.fill_(value));
            public static Tensor zeros_(Tensor tensor) => NoGrad(tensor.zero_);
            public static Tensor ones_(Tensor tensor) => constant_(tensor, 1);

            /// <summary>U(-a, a) with a = gain·sqrt(6 / (fan_in + fan_out)) (Glorot).</summary>
            public static Tensor xavier_uniform_(Tensor tensor, double gain = 1)
            {
                var (fanIn, fanOut) = calculate_fan_in_and_fan_out(tensor);
                var bound = Math.Sqrt(3.0) * gain * Math.Sqrt(2.0 / (fanIn + fanOut));
                return uniform_(tensor, -bound, bound);
            }

            /// <summary>U(-b, b) with b = gain·sqrt(3 / fan), gain from <paramref name="nonlinearity"/> and slope <paramref name="a"/> (He).</summary>
            public static Tensor kaiming_uniform_(Tensor tensor, double a = 0, FanMode mode = FanMode.FanIn,
                NonlinearityType nonlinearity = NonlinearityType.LeakyReLU)
            {
                var bound = Math.Sqrt(3.0) * calculate_gain(nonlinearity, a) / Math.Sqrt(Fan(tensor, mode));
                return uniform_(tensor, -bound, bound);
            }

            /// <summary>N(0, std²) with std = gain / sqrt(fan) (He).</summary>
            public static Tensor kaiming_normal_(Tensor tensor, double a = 0, FanMode mode = FanMode.FanIn,
                NonlinearityType nonlinearity = NonlinearityType.LeakyReLU) =>
                normal_(tensor, 0, calculate_gain(nonlinearity, a) / Math.Sqrt(Fan(tensor, mode)));

            /// <summary>
            /// N(mean, std²) truncated to [a, b] (ViT's initialiser), by PyTorch's inverse-CDF method: draw
            /// u ~ U(2Φ(α)−1, 2Φ(β)−1), then x = mean + std·√2·erfinv(u), clamped to [a, b].
            /// </summary>
            public static Tensor trunc_normal_(Tensor tensor, double mean = 0, double std = 1, double a = -2, double b = 2)
            {
                var lo = NormalCdf((a - mean) / std);
                var hi = NormalCdf((b - mean) / std);
                return NoGrad(() => tensor.uniform_(2 * lo - 1, 2 * hi - 1).erfinv_().mul_(std * Math.Sqrt(2.0)).add_(mean).clamp_(a, b));
            }

            private static double NormalCdf(double x)
            {
                using var t = torch.tensor(new[] { x / Math.Sqrt(2.0) });
                using var e = t.erf();
                return (1 + e.item()) / 2;
            }
        }
    }
}
