namespace Peft.Torch;

public static partial class torch
{
    public static partial class nn
    {
        /// <summary>y = x Wᵀ + b, with W of shape (out_features, in_features).</summary>
        public sealed class Linear : Module<Tensor, Tensor>
        {
            public Linear(long in_features, long out_features, bool bias = true, ScalarType? dtype = null, Device? device = null)
            {
                this.in_features = in_features;
                this.out_features = out_features;
                weight = RegisterParameter("weight", Layers.NewParameter([out_features, in_features], dtype, device));
                if (bias) this.bias = RegisterParameter("bias", Layers.NewParameter([out_features], dtype, device));
                Layers.ResetParameters(weight, this.bias);
            }

            public long in_features { get; }
            public long out_features { get; }
            public Parameter weight { get; }
            public Parameter? bias { get; }

            public override Tensor forward(Tensor input) => functional.linear(input, weight, bias);

            protected override string extra_repr() => $"in_features={in_features}, out_features={out_features}, bias={bias is not null}";
        }

        /// <summary>2-D convolution over (N, C, H, W) with a square kernel; weight (out, in/groups, k, k).</summary>
        public sealed class Conv2d : Module<Tensor, Tensor>
        {
            public Conv2d(long in_channels, long out_channels, long kernel_size, long stride = 1, long padding = 0, long dilation = 1,
                long groups = 1, bool bias = true, ScalarType? dtype = null, Device? device = null)
            {
                if (groups < 1 || in_channels % groups != 0 || out_channels % groups != 0)
                    throw new ArgumentException($"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})");
                (this.in_channels, this.out_channels, this.kernel_size) = (in_channels, out_channels, kernel_size);
                (this.stride, this.padding, this.dilation, this.groups) = (stride, padding, dilation, groups);
                weight = RegisterParameter("weight",
                    Layers.NewParameter([out_channels, in_channels / groups, kernel_size, kernel_size], dtype, device));
                if (bias) this.bias = RegisterParameter("bias", Layers.NewParameter([out_channels], dtype, device));
                Layers.ResetParameters(weight, this.bias);
            }

            public long in_channels { get; }
            public long out_channels { get; }
            public long kernel_size { get; }
            public long stride { get; }
            public long padding { get; }
            public long dilation { get; }
            public long groups { get; }
            public Parameter weight { get; }
            public Parameter? bias { get; }

            public override Tensor forward(Tensor input) =>
                functional.conv2d(input, weight, bias, stride, padding, dilation, groups);

            protected override string extra_repr() =>
                $"{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}, padding={padding}, groups={groups}, bias={bias is not null}";
        }

        /// <summary>Layer normalisation over the trailing <c>normalized_shape</c> dimensions; weight 1 and bias 0 at start.</summary>
        public sealed class LayerNorm : Module<Tensor, Tensor>
        {
            public LayerNorm(long normalized_shape, double eps = 1e-5, bool elementwise_affine = true, ScalarType? dtype = null,
                Device? device = null) : this([normalized_shape], eps, elementwise_affine, dtype, device) { }

            public LayerNorm(long[] normalized_shape, double eps = 1e-5, bool elementwise_affine = true, ScalarType? dtype = null,
                Device? device = null)
            {
                this.normalized_shape = (long[])normalized_shape.Clone();
                this.eps = eps;
                if (!elementwise_affine) return;
                using var ones = torch.ones(normalized_shape, dtype, device);
                using var zeros = torch.zeros(normalized_shape, dtype, device);
                weight = RegisterParameter("weight", new Parameter(ones));
                bias = RegisterParameter("bias", new Parameter(zeros));
            }

            public long[] normalized_shape { get; }
            public double eps { get; }
            public Parameter? weight { get; }
            public Parameter? bias { get; }

            public override Tensor forward(Tensor input) => functional.layer_norm(input, normalized_shape, weight, bias, eps);

            protected override string extra_repr() =>
                $"[{string.Join(", ", normalized_shape)}], eps={eps}, elementwise_affine={weight is not null}";
        }
    }
}

/// <summary>Construction helpers shared by the layers.</summary>
internal static class Layers
{
    internal static torch.nn.Parameter NewParameter(long[] shape, ScalarType? dtype, Device? device)
    {
        using var data = torch.empty(shape, dtype, device);
        return new torch.nn.Parameter(data);
    }

    /// <summary>
    /// PyTorch's reset_parameters of Linear and Conv2d: kaiming_uniform_(weight, a=√5), i.e.
    /// U(−1/√fan_in, 1/√fan_in), and bias ~ U(−1/√fan_in, 1/√fan_in).
    /// </summary>
    internal static void ResetParameters(Tensor weight, Tensor? bias)
    {
        torch.nn.init.kaiming_uniform_(weight, a: Math.Sqrt(5));
        if (bias is null) return;
        var (fanIn, _) = torch.nn.init.calculate_fan_in_and_fan_out(weight);
        var bound = fanIn > 0 ? 1 / Math.Sqrt(fanIn) : 0;
        torch.nn.init.uniform_(bias, -bound, bound);
    }

    /// <summary>A second handle on the same tensor, for modules that pass their input through.</summary>
    internal static Tensor Alias(Tensor t) => Tensor.FromHandle(Native.peft_tensor_alias(t.Handle));
}
