namespace Peft.Torch;

public static partial class torch
{
    public static partial class nn
    {
        // Every module here returns a new tensor handle, even when the values are its input's, so the
        // caller may dispose input and output independently.

        /// <summary>Zeroes elements with probability p in training mode and scales the rest by 1/(1−p).</summary>
        public sealed class Dropout(double p = 0.5) : Module<Tensor, Tensor>
        {
            public double p { get; } = p is >= 0 and <= 1 ? p : throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1]");
            public override Tensor forward(Tensor input) => functional.dropout(input, p, training);
            protected override string extra_repr() => $"p={p}";
        }

        /// <summary>Zeroes whole channels of (N, C, H, W) with probability p in training mode.</summary>
        public sealed class Dropout2d(double p = 0.5) : Module<Tensor, Tensor>
        {
            public double p { get; } = p is >= 0 and <= 1 ? p : throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1]");
            public override Tensor forward(Tensor input) => functional.dropout2d(input, p, training);
            protected override string extra_repr() => $"p={p}";
        }

        /// <summary>GELU, exact x·Φ(x) by default or the tanh approximation.</summary>
        public sealed class GELU(bool tanh_approximation = false) : Module<Tensor, Tensor>
        {
            public bool tanh_approximation { get; } = tanh_approximation;
            public override Tensor forward(Tensor input) => functional.gelu(input, tanh_approximation);
            protected override string extra_repr() => tanh_approximation ? "approximate='tanh'" : "";
        }

        public sealed class ReLU : Module<Tensor, Tensor>
        {
            public override Tensor forward(Tensor input) => functional.relu(input);
        }

        /// <summary>Returns its input (as a new handle on the same tensor).</summary>
        public sealed class Identity : Module<Tensor, Tensor>
        {
            public override Tensor forward(Tensor input) => Layers.Alias(input);
        }
    }
}
