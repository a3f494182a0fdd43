namespace Peft.Torch;

public static partial class torch
{
    public static partial class optim
    {
        /// <summary>Learning-rate schedules (torch.optim.lr_scheduler).</summary>
        public static class lr_scheduler
        {
            /// <summary>
            /// Sets each group's lr to its base lr (<see cref="ParamGroup.initial_lr"/>) times a factor of the
            /// step index, as PyTorch's LambdaLR. The index starts at 0 (applied on construction) and the
            /// caller advances it with <see cref="step"/>: once per epoch or once per iteration, whichever the
            /// schedule's lengths count.
            /// </summary>
            public class LambdaLR
            {
                private readonly Func<int, double> _factor;

                public LambdaLR(Optimizer optimizer, Func<int, double> lr_lambda)
                {
                    this.optimizer = optimizer;
                    _factor = lr_lambda;
                    base_lrs = optimizer.param_groups.Select(g => g.initial_lr).ToArray();
                    Apply();
                }

                public Optimizer optimizer { get; }
                public IReadOnlyList<double> base_lrs { get; }

                /// <summary>The index of the current step (0 after construction).</summary>
                public int last_step { get; private set; }

                /// <summary>The multiplier of the base lrs at <paramref name="step_index"/>.</summary>
                public double factor(int step_index) => _factor(step_index);

                /// <summary>Each group's lr at <paramref name="step_index"/> (does not change the optimizer).</summary>
                public double[] get_lr(int step_index)
                {
                    var f = factor(step_index);
                    return base_lrs.Select(b => b * f).ToArray();
                }

                /// <summary>The lrs now set on the groups.</summary>
                public double[] get_last_lr() => optimizer.param_groups.Select(g => g.lr).ToArray();

                /// <summary>Advances to the next step index and sets its lrs.</summary>
                public void step()
                {
                    last_step++;
                    Apply();
                }

                public Dictionary<string, double> state_dict() => new() { ["last_step"] = last_step };

                public void load_state_dict(IReadOnlyDictionary<string, double> state)
                {
                    last_step = (int)state["last_step"];
                    Apply();
                }

                private void Apply()
                {
                    var lrs = get_lr(last_step);
                    for (var g = 0; g < lrs.Length; g++) optimizer.param_groups[g].lr = lrs[g];
                }
            }

            /// <summary>
            /// Linear warmup then half-cosine decay, VPT's schedule generalised to a start and an end factor:
            /// <code>
            /// f(s) = start + (1 − start)·s / warmup_steps                          for s &lt; warmup_steps
            /// f(s) = final + (1 − final)·½(1 + cos(π·min(1, (s − warmup) / (total − warmup))))   afterwards
            /// </code>
            /// so the lr rises from start·base to base at the end of warmup, is (base + final·base)/2 half-way
            /// through the decay and final·base from <paramref name="total_steps"/> on. VPT: 10 warmup epochs,
            /// total = the number of epochs, start = final = 0, stepped once per epoch.
            /// </summary>
            public sealed class WarmupCosineSchedule : LambdaLR
            {
                public WarmupCosineSchedule(Optimizer optimizer, int warmup_steps, int total_steps, double warmup_start_factor = 0,
                    double final_factor = 0) : base(optimizer, Factor(warmup_steps, total_steps, warmup_start_factor, final_factor))
                {
                    this.warmup_steps = warmup_steps;
                    this.total_steps = total_steps;
                }

                public int warmup_steps { get; }
                public int total_steps { get; }

                private static Func<int, double> Factor(int warmup, int total, double start, double final)
                {
                    ArgumentOutOfRangeException.ThrowIfNegative(warmup);
                    ArgumentOutOfRangeException.ThrowIfLessThan(total, warmup);
                    return s =>
                    {
                        if (s < warmup) return start + (1 - start) * s / warmup;
                        var progress = Math.Min(1.0, (double)(s - warmup) / Math.Max(1, total - warmup));
                        return final + (1 - final) * 0.5 * (1 + Math.Cos(Math.PI * progress));
                    };
                }
            }
        }
    }
}
