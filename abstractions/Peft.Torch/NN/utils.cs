namespace Peft.Torch;

public static partial class torch
{
    public static partial class nn
    {
        public static class utils
        {
            /// <summary>
            /// Scales the gradients of <paramref name="parameters"/> in place so that their joint
            /// <paramref name="norm_type"/>-norm is at most <paramref name="max_norm"/>, and returns the norm
            /// before clipping. As PyTorch: total = ‖(‖g₁‖, ‖g₂‖, ...)‖, every gradient is multiplied by
            /// min(1, max_norm / (total + 1e-6)). Parameters without a gradient are skipped.
            /// </summary>
            public static double clip_grad_norm_(IEnumerable<Tensor> parameters, double max_norm, double norm_type = 2,
                bool error_if_nonfinite = false)
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var grads = Gradients(parameters);
                if (grads.Count == 0) return 0;
                var norms = grads.Select(g => g.norm(norm_type)).ToList();
                var total = stack(norms).norm(norm_type).item();
                if (error_if_nonfinite && !double.IsFinite(total))
                    throw new TorchException($"the total norm of order {norm_type} of the gradients is non-finite ({total}), so it cannot be clipped");
                var coefficient = max_norm / (total + 1e-6);
                if (coefficient < 1)
                    foreach (var g in grads) g.mul_(coefficient);
                return total;
            }

            /// <summary>Clamps every gradient element to [−clip_value, clip_value] in place.</summary>
            public static void clip_grad_value_(IEnumerable<Tensor> parameters, double clip_value)
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                foreach (var g in Gradients(parameters)) g.clamp_(-clip_value, clip_value);
            }

            // Handles on the gradients (in the caller's dispose scope); in-place changes reach .grad.
            private static List<Tensor> Gradients(IEnumerable<Tensor> parameters) =>
                parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        }
    }
}
