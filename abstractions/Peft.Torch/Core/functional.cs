namespace Peft.Torch;

public static partial class torch
{
    public static partial class nn
    {
        /// <summary>Stateless neural-network functions (torch.nn.functional).</summary>
        public static class functional
        {
            public static Tensor linear(Tensor input, Tensor weight, Tensor? bias = null) =>
                Ops.Linear.Call([input, weight, NativeArg.OfOptional(bias)]);

            public static unsafe Tensor conv2d(Tensor input, Tensor weight, Tensor? bias = null, long stride = 1, long padding = 0,
                long dilation = 1, long groups = 1)
            {
                long* s = stackalloc long[] { stride, stride, padding, padding, dilation, dilation };
                return Ops.Conv2d.Call([input, weight, NativeArg.OfOptional(bias), NativeArg.IntList(s, 2),
                    NativeArg.IntList(s + 2, 2), NativeArg.IntList(s + 4, 2), groups]);
            }

            public static Tensor softmax(Tensor input, long dim) => Ops.Softmax.Call([input, dim]);
            public static Tensor log_softmax(Tensor input, long dim) => Ops.LogSoftmax.Call([input, dim]);

            public static unsafe Tensor layer_norm(Tensor input, long[] normalized_shape, Tensor? weight = null, Tensor? bias = null,
                double eps = 1e-5)
            {
                fixed (long* p = normalized_shape)
                    return Ops.LayerNorm.Call([input, NativeArg.IntList(p, normalized_shape.Length), NativeArg.OfOptional(weight),
                        NativeArg.OfOptional(bias), eps]);
            }

            private static readonly byte[] s_none = "none\0"u8.ToArray();
            private static readonly byte[] s_tanh = "tanh\0"u8.ToArray();

            /// <summary>GELU; exact (erf) by default, as ViT uses.</summary>
            public static unsafe Tensor gelu(Tensor input, bool tanh_approximation = false)
            {
                fixed (byte* mode = tanh_approximation ? s_tanh : s_none)
                    return Ops.Gelu.Call([input, NativeArg.Utf8(mode)]);
            }

            public static Tensor relu(Tensor input) => Ops.Relu.Call([input]);
            public static Tensor sigmoid(Tensor input) => Ops.Sigmoid.Call([input]);
            public static Tensor tanh(Tensor input) => Ops.Tanh.Call([input]);

            public static Tensor dropout(Tensor input, double p = 0.5, bool training = true) =>
                Ops.Dropout.Call([input, p, training]);

            /// <summary>Zeroes whole channels of an (N, C, H, W) input (nn.Dropout2d).</summary>
            public static Tensor dropout2d(Tensor input, double p = 0.5, bool training = true) =>
                Ops.FeatureDropout.Call([input, p, training]);

            public enum Reduction : long { None = 0, Mean = 1, Sum = 2 }

            /// <summary>Cross entropy of logits (N, C) against int64 class indices (N).</summary>
            public static Tensor cross_entropy(Tensor input, Tensor target, Tensor? weight = null, Reduction reduction = Reduction.Mean,
                long ignore_index = -100, double label_smoothing = 0) =>
                Ops.CrossEntropy.Call([input, target, NativeArg.OfOptional(weight), (long)reduction, ignore_index, label_smoothing]);

            /// <summary>Bilinear resize of (N, C, H, W) to (height, width).</summary>
            public static unsafe Tensor interpolate_bilinear(Tensor input, long height, long width, bool align_corners = false)
            {
                long* size = stackalloc long[] { height, width };
                return Ops.UpsampleBilinear.Call([input, NativeArg.IntList(size, 2), align_corners, NativeArg.None]);
            }

            public static Tensor one_hot(Tensor indices, long num_classes) => Ops.OneHot.Call([indices, num_classes]);

            public static Tensor cosine_similarity(Tensor x1, Tensor x2, long dim = 1, double eps = 1e-8) =>
                Ops.CosineSimilarity.Call([x1, x2, dim, eps]);

            /// <summary>x / max(‖x‖_p, eps) along <paramref name="dim"/>.</summary>
            public static Tensor normalize(Tensor input, double p = 2, long dim = 1, double eps = 1e-12)
            {
                using var n = input.norm(p, dim, keepdim: true);
                using var c = n.clamp(eps);
                return input.div(c);
            }

            /// <summary>
            /// softmax(q kᵀ · scale) v over the last two dimensions. Uses libtorch's fused kernel where the
            /// linked libtorch has it (2.0+), the composed form otherwise.
            /// </summary>
            public static Tensor scaled_dot_product_attention(Tensor q, Tensor k, Tensor v, double? scale = null)
            {
                var s = scale ?? 1.0 / Math.Sqrt(q.size(-1));
                using var kt = k.transpose(-2, -1);
                using var logits = q.matmul(kt);
                using var scaled = logits.mul(s);
                using var attn = softmax(scaled, -1);
                return attn.matmul(v);
            }
        }
    }
}
