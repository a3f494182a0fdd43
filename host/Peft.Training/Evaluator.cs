using System.Diagnostics;
using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Training.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Training;

/// <summary>Top-1 accuracy of a split, and how fast it was measured.</summary>
public sealed record EvaluationResult(double? Top1, long Images, double ImagesPerSecond);

/// <summary>
/// Evaluates a method on its backbone, with no gradients and both in eval mode: used by the trainer after its epochs and
/// by `peft eval` on an adapter. Also computes the pooled features a linear probe's cache holds.
/// </summary>
public sealed class Evaluator(IVisionBackbone backbone, IPeftMethod method)
{
    /// <summary>Top-1 on every batch of <paramref name="source"/> (epoch 0's order); <paramref name="pooled"/>: it yields pooled features.</summary>
    public EvaluationResult Evaluate(IBatchSource source, string split, bool pooled = false, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        method.Module.eval();
        backbone.Module.eval();
        using var noGrad = no_grad();
        long correct = 0, seen = 0;
        var clock = Stopwatch.StartNew();
        foreach (var batch in source.Batches(0, cancellationToken))
        {
            using (batch)
            using (NewDisposeScope())
            {
                var (inputs, labels) = batch.On(backbone.Device);
                var features = pooled ? inputs : backbone.Forward(inputs, method).Pooled;
                correct += method.Head(features).argmax(1).eq(labels).sum().item<long>();
                seen += batch.Labels.size(0);
            }
            progress?.Report(new TrainingProgress(split, 0, 0, (int)seen, source.SampleCount, double.NaN, (double)correct / seen,
                seen / Math.Max(1e-9, clock.Elapsed.TotalSeconds), TimeSpan.Zero, 0));
        }
        return new EvaluationResult(seen == 0 ? null : (double)correct / seen, seen, seen / Math.Max(1e-9, clock.Elapsed.TotalSeconds));
    }

    /// <summary>The pooled feature of a batch of images, without gradients, in eval mode (what a linear probe's head reads).</summary>
    public Tensor Featurize(Tensor images)
    {
        method.Module.eval();
        backbone.Module.eval();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var onDevice = images.device == backbone.Device ? images : images.to(backbone.Device, non_blocking: true);
        return backbone.Forward(onDevice, method).Pooled.MoveToOuterDisposeScope();
    }
}
