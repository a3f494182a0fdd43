using Peft.Torch;
using static Peft.Torch.torch;

namespace Peft.Abstractions.Methods;

/// <summary>
/// The linear head every method reads out with: Linear(D → C), weight kaiming-normal (fan_out) and
/// every bias −log((1 − 0.01)/0.01) = −4.5951, VPT's "special bias" (vpt_gated.md §1b).
/// </summary>
public sealed class ClassifierHead : nn.Module<Tensor, Tensor>
{
    /// <summary>VPT's initial head bias: a 1% prior for every class.</summary>
    public static readonly double VptBias = -Math.Log((1 - 0.01) / 0.01);

    public nn.Linear fc { get; }

    public ClassifierHead(long dim, long classes, double initialBias = double.NaN)
    {
        fc = RegisterModule("fc", new nn.Linear(dim, classes));
        nn.init.kaiming_normal_(fc.weight, mode: nn.init.FanMode.FanOut);
        nn.init.constant_(fc.bias!, double.IsNaN(initialBias) ? VptBias : initialBias);
    }

    public override Tensor forward(Tensor pooled) => fc.call(pooled);
}
