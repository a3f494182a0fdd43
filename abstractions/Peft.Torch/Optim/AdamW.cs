using static Peft.Torch.torch.nn;

namespace Peft.Torch;

public static partial class torch
{
    public static partial class optim
    {
        /// <summary>
        /// Adam with decoupled weight decay, as torch.optim.AdamW (t counts this parameter's steps):
        /// <code>
        /// p = p·(1 − lr·weight_decay)
        /// m = β₁·m + (1 − β₁)·g            v = β₂·v + (1 − β₂)·g²
        /// v̂ = max(v̂, v) if amsgrad, else v
        /// p = p − lr/(1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + eps)
        /// </code>
        /// </summary>
        public sealed class AdamW : Optimizer
        {
            /// <summary>A parameter group with AdamW's options; unset ones take the optimizer's.</summary>
            public sealed class Group : ParamGroup
            {
                public Group(IEnumerable<Parameter> parameters, double? lr = null, (double beta1, double beta2)? betas = null,
                    double? eps = null, double? weight_decay = null, bool? amsgrad = null) : base(parameters, lr, weight_decay)
                {
                    SetOption("beta1", betas?.beta1);
                    SetOption("beta2", betas?.beta2);
                    SetOption("eps", eps);
                    SetOption("amsgrad", amsgrad is { } a ? a ? 1 : 0 : null);
                }
            }

            public AdamW(IEnumerable<Parameter> parameters, double lr = 1e-3, (double beta1, double beta2)? betas = null, double eps = 1e-8,
                double weight_decay = 1e-2, bool amsgrad = false) : this([new ParamGroup(parameters)], lr, betas, eps, weight_decay, amsgrad) { }

            public AdamW(IEnumerable<ParamGroup> groups, double lr = 1e-3, (double beta1, double beta2)? betas = null, double eps = 1e-8,
                double weight_decay = 1e-2, bool amsgrad = false) : base(groups, new Dictionary<string, double>
                {
                    ["lr"] = lr, ["beta1"] = (betas ?? (0.9, 0.999)).beta1, ["beta2"] = (betas ?? (0.9, 0.999)).beta2, ["eps"] = eps,
                    ["weight_decay"] = weight_decay, ["amsgrad"] = amsgrad ? 1 : 0,
                })
            {
                foreach (var g in param_groups)
                {
                    CheckNonNegative(g, "eps");
                    if (!(g["beta1"] is >= 0 and < 1) || !(g["beta2"] is >= 0 and < 1))
                        throw new ArgumentOutOfRangeException(nameof(betas), $"invalid betas ({g["beta1"]}, {g["beta2"]})");
                }
            }

            public override void step() => ForEachGradient((group, p, grad) =>
            {
                var (lr, weightDecay, beta1, beta2, eps) = (group.lr, group.weight_decay, group["beta1"], group["beta2"], group["eps"]);
                var s = state(p);
                var expAvg = s.GetOrZeros("exp_avg", p);
                var expAvgSq = s.GetOrZeros("exp_avg_sq", p);
                var t = ++s.step;

                if (weightDecay != 0) p.mul_(1 - lr * weightDecay);
                expAvg.lerp_(grad, 1 - beta1);
                expAvgSq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);

                var biasCorrection1 = 1 - Math.Pow(beta1, t);
                var biasCorrection2Sqrt = Math.Sqrt(1 - Math.Pow(beta2, t));
                var second = expAvgSq;
                if (group["amsgrad"] != 0)
                {
                    second = s.GetOrZeros("max_exp_avg_sq", p);
                    second.copy_(second.maximum(expAvgSq));
                }
                var denom = second.sqrt().div_(biasCorrection2Sqrt).add_(eps);
                p.addcdiv_(expAvg, denom, -lr / biasCorrection1);
            });
        }
    }
}
