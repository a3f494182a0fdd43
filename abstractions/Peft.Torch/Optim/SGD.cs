using static Peft.Torch.torch.nn;

namespace Peft.Torch;

public static partial class torch
{
    public static partial class optim
    {
        /// <summary>
        /// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and L2 weight
        /// decay, as torch.optim.SGD:
        /// <code>
        /// g = grad + weight_decay·p
        /// b = g on the first step, else momentum·b + (1 − dampening)·g
        /// g = g + momentum·b if nesterov, else b
        /// p = p − lr·g
        /// </code>
        /// </summary>
        public sealed class SGD : Optimizer
        {
            /// <summary>A parameter group with SGD's options; unset ones take the optimizer's.</summary>
            public sealed class Group : ParamGroup
            {
                public Group(IEnumerable<Parameter> parameters, double? lr = null, double? momentum = null, double? dampening = null,
                    double? weight_decay = null, bool? nesterov = null) : base(parameters, lr, weight_decay)
                {
                    SetOption("momentum", momentum);
                    SetOption("dampening", dampening);
                    SetOption("nesterov", nesterov is { } n ? n ? 1 : 0 : null);
                }
            }

            public SGD(IEnumerable<Parameter> parameters, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0,
                bool nesterov = false) : this([new ParamGroup(parameters)], lr, momentum, dampening, weight_decay, nesterov) { }

            public SGD(IEnumerable<ParamGroup> groups, double lr, double momentum = 0, double dampening = 0, double weight_decay = 0,
                bool nesterov = false) : base(groups, new Dictionary<string, double>
                {
                    ["lr"] = lr, ["momentum"] = momentum, ["dampening"] = dampening, ["weight_decay"] = weight_decay,
                    ["nesterov"] = nesterov ? 1 : 0,
                })
            {
                foreach (var g in param_groups)
                {
                    CheckNonNegative(g, "momentum");
                    if (g["nesterov"] != 0 && (g["momentum"] <= 0 || g["dampening"] != 0))
                        throw new ArgumentException("Nesterov momentum requires a momentum and zero dampening");
                }
            }

            public override void step() => ForEachGradient((group, p, grad) =>
            {
                var (lr, weightDecay, momentum) = (group.lr, group.weight_decay, group["momentum"]);
                var d = weightDecay != 0 ? grad.add(p, weightDecay) : grad;
                if (momentum != 0)
                {
                    var s = state(p);
                    // PyTorch starts the buffer at the first gradient itself, without dampening.
                    if (s.tensors.TryGetValue("momentum_buffer", out var buffer))
                        buffer.mul_(momentum).add_(d, 1 - group["dampening"]);
                    else
                        buffer = s.Set("momentum_buffer", d.clone());
                    d = group["nesterov"] != 0 ? d.add(buffer, momentum) : buffer;
                }
                p.add_(d, -lr);
            });
        }
    }
}
