using Peft.Abstractions.Options;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Training;

/// <summary>
/// Reduced precision written once for every method (TorchSharp has no autocast). The frozen backbone computes in
/// bf16/fp16 (see VisionTransformer.ToPrecision); every tensor the optimizer updates stays fp32:
/// <list type="bullet">
/// <item>a method's own parameters are fp32 already (the forward loop hands its hooks fp32 tokens);</item>
/// <item>backbone tensors a method tunes (bias tuning, full fine-tuning, DA-VPT+) are reduced in the model, so each gets
/// an fp32 master copy: the optimizer, the checkpoint and the adapter see the master, the model a copy of it refreshed
/// before every forward pass, and the model copy's gradient is moved into the master's after backward;</item>
/// <item>fp16 scales the loss (dynamic, as PyTorch's GradScaler: start 2¹⁶, halve on overflow and skip the step,
/// double after 2,000 clean steps), so small gradients survive fp16's range; skipped steps are counted.</item>
/// </list>
/// </summary>
public sealed class MixedPrecision : IDisposable
{
    private readonly Dictionary<Parameter, Parameter> _masters = new(ReferenceEqualityComparer.Instance);
    private readonly IReadOnlyList<(string Name, Parameter Parameter)> _model;
    private int _cleanSteps;

    public const double InitialScale = 65536, GrowthFactor = 2, BackoffFactor = 0.5;
    public const int GrowthInterval = 2000;

    /// <param name="trainables">What a run trains, as the model holds it (some maybe in reduced precision).</param>
    public MixedPrecision(Precision precision, IReadOnlyList<(string Name, Parameter Parameter)> trainables)
    {
        Precision = precision;
        _model = trainables;
        using var noGrad = no_grad();
        foreach (var (_, p) in trainables.Where(t => t.Parameter.dtype != ScalarType.Float32))
        {
            using var copy = p.to(ScalarType.Float32);
            _masters[p] = new Parameter(copy.clone(), requires_grad: true);
        }
        Trainables = [.. trainables.Select(t => (t.Name, Master(t.Parameter)))];
        Scale = precision == Precision.Fp16 ? InitialScale : 1;
    }

    public Precision Precision { get; }

    /// <summary>The trainables as the optimizer and the run directory see them: all fp32.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Trainables { get; }

    /// <summary>The factor the loss is multiplied by before backward (1 except with fp16).</summary>
    public double Scale { get; private set; }

    /// <summary>Optimizer steps skipped because the scaled gradients overflowed (fp16).</summary>
    public int SkippedSteps { get; private set; }

    /// <summary>The fp32 tensor the optimizer updates for a trainable of the model (itself when it is fp32).</summary>
    public Parameter Master(Parameter model) => _masters.TryGetValue(model, out var master) ? master : model;

    /// <summary>Optimizer groups over the masters.</summary>
    public IReadOnlyList<Abstractions.Methods.ParameterGroup> Groups(IReadOnlyList<Abstractions.Methods.ParameterGroup> groups) =>
        [.. groups.Select(g => g with { Parameters = [.. g.Parameters.Select(p => (p.Name, Master(p.Parameter)))] })];

    /// <summary>Copies every master into the model's reduced-precision tensor (before a forward pass, after a load).</summary>
    public void CopyMastersToModel()
    {
        if (_masters.Count == 0) return;
        using var noGrad = no_grad();
        foreach (var (model, master) in _masters) model.copy_(master);
    }

    /// <summary>
    /// After backward: moves the model copies' gradients into the masters (fp32) and divides every trainable's gradient
    /// by the loss scale. False when a gradient is not finite (fp16 overflow): the caller skips the step, and the scale
    /// backs off; otherwise the scale grows after <see cref="GrowthInterval"/> clean steps.
    /// </summary>
    public bool FinishGradients()
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (model, master) in _masters)
        {
            var grad = model.grad;
            master.grad = grad?.to(ScalarType.Float32);
            model.grad = null;
        }
        if (Precision != Precision.Fp16) return true;

        var grads = Trainables.Select(t => t.Parameter.grad).OfType<Tensor>().ToList();
        var finite = grads.Count == 0 || stack([.. grads.Select(g => g.isfinite().all())]).all().item<bool>();
        if (!finite)
        {
            foreach (var (_, p) in Trainables) p.grad = null;
            SkippedSteps++;
            Scale *= BackoffFactor;
            _cleanSteps = 0;
            if (Scale < 1) throw new InvalidOperationException(
                $"the fp16 loss scale collapsed below 1 after {SkippedSteps} overflowing steps: the gradients are not finite at any scale");
            return false;
        }
        foreach (var g in grads) g.div_(Scale);
        if (++_cleanSteps >= GrowthInterval)
        {
            Scale *= GrowthFactor;
            _cleanSteps = 0;
        }
        return true;
    }

    /// <summary>The scaler's state for a checkpoint (fp16 resumes with the scale it had).</summary>
    public (double Scale, int CleanSteps, int Skipped) State => (Scale, _cleanSteps, SkippedSteps);

    public void Restore((double Scale, int CleanSteps, int Skipped) state) => (Scale, _cleanSteps, SkippedSteps) = state;

    public void Dispose()
    {
        foreach (var master in _masters.Values) master.Dispose();
    }
}
