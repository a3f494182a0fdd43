using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Abstractions.Methods;

/// <summary>
/// A module that is a method's classifier head. The trainer's weight-decay rules find the head by this role, whatever
/// the method names it (VPT decays every trainable tensor but the head bias; DA-VPT decays the head weight apart).
/// </summary>
public interface IClassifierHead
{
    Parameter Weight { get; }

    Parameter? Bias { get; }
}

/// <summary>
/// The linear head every method reads out with: Linear(D → C), weight kaiming-normal (fan_out) and
/// every bias −log((1 − 0.01)/0.01) = −4.5951, VPT's "special bias" (VPT's src/models/vit_models.py).
/// </summary>
public sealed class ClassifierHead : nn.Module<Tensor, Tensor>, IClassifierHead
{
    /// <summary>VPT's initial head bias: a 1% prior for every class.</summary>
    public static readonly double VptBias = -Math.Log((1 - 0.01) / 0.01);

#pragma warning disable IDE1006 // timm's key names: head.fc.weight, head.fc.bias
    public readonly Linear fc;
#pragma warning restore IDE1006

    public ClassifierHead(long dim, long classes, double initialBias = double.NaN) : base(nameof(ClassifierHead))
    {
        fc = nn.Linear(dim, classes);
        using (no_grad())
        {
            nn.init.kaiming_normal_(fc.weight, mode: nn.init.FanInOut.FanOut);
            nn.init.constant_(fc.bias!, double.IsNaN(initialBias) ? VptBias : initialBias);
        }
        RegisterComponents();
    }

    public Parameter Weight => fc.weight;

    public Parameter? Bias => fc.bias;

    public override Tensor forward(Tensor pooled) => fc.forward(pooled);
}
