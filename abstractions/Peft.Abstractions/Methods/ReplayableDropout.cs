using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Peft.Abstractions.Methods;

/// <summary>
/// Dropout, element-wise (<c>torch.nn.Dropout</c>) or channel-wise (<c>torch.nn.Dropout2d</c>: one draw per sample and
/// channel of a (B, C, …) input), whose training-time keep-masks can come from outside. Without a
/// <see cref="MaskSource"/> it is libtorch's own dropout, drawn from its generator. With one, every training forward asks
/// the source for a 0/1 keep-mask of <see cref="MaskShape"/> and returns <c>input · mask / (1 − p)</c>, as PyTorch's
/// dropout does. That is how a run reproduces masks drawn elsewhere: libtorch 2.10 and PyTorch 1.13 do not draw the same
/// Bernoulli numbers from the same seed, so the method plugins' parity tests replay the masks their PyTorch reference
/// drew, with dropout on. In eval mode, or with p = 0, it is the identity and asks the source for nothing.
/// </summary>
public sealed class ReplayableDropout : nn.Module<Tensor, Tensor>
{
    /// <param name="p">Probability that an element (or a channel) is zeroed, in [0, 1).</param>
    /// <param name="channelwise">Zero whole channels (dimension 1) of each sample, as Dropout2d does.</param>
    public ReplayableDropout(double p, bool channelwise = false) : base(nameof(ReplayableDropout))
    {
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "a dropout probability must be in [0, 1)");
        this.p = p;
        Channelwise = channelwise;
    }

#pragma warning disable IDE1006 // named as torch.nn.Dropout's attribute
    /// <summary>Probability that an element (or a channel) is zeroed.</summary>
    public double p { get; }
#pragma warning restore IDE1006

    /// <summary>Whether whole channels are zeroed (Dropout2d) rather than single elements.</summary>
    public bool Channelwise { get; }

    /// <summary>
    /// Where training forwards take their keep-masks: called with the mask's shape, it returns a 0/1 tensor of exactly that
    /// shape (any floating type, any device; the source keeps ownership). Null: libtorch draws them.
    /// </summary>
    public Func<long[], Tensor>? MaskSource { get; set; }

    /// <summary>The keep-mask's shape for an input: the input's own, or (B, C, 1, …) channel-wise.</summary>
    public long[] MaskShape(Tensor input)
    {
        if (!Channelwise) return input.shape;
        if (input.dim() < 3) throw new ArgumentException($"channel-wise dropout needs a (B, C, …) input; got shape [{string.Join(", ", input.shape)}]");
        return [input.size(0), input.size(1), .. Enumerable.Repeat(1L, (int)input.dim() - 2)];
    }

    public override Tensor forward(Tensor input)
    {
        if (MaskSource is null || !training || p == 0)
            return Channelwise ? F.dropout2d(input, p, training) : F.dropout(input, p, training);
        var shape = MaskShape(input);
        var mask = MaskSource(shape);
        if (!mask.shape.SequenceEqual(shape))
            throw new InvalidOperationException($"the dropout mask source returned shape [{string.Join(", ", mask.shape)}], expected [{string.Join(", ", shape)}]");
        using var converted = mask.to(input.dtype, input.device); // a new handle (a view when nothing changes)
        return input.mul(converted).div_(1 - p);
    }
}
