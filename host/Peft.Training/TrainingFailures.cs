using Peft.Training.Data;

namespace Peft.Training;

/// <summary>
/// The loss of a training step is NaN or infinite: every later step would train on garbage and report it as a result.
/// Names the epoch, the step and the term (the cross entropy, or the method's auxiliary loss).
/// </summary>
public sealed class NonFiniteLossException(string message) : Exception(message)
{
    /// <param name="epoch">0-based epoch.</param>
    /// <param name="step">0-based step within the epoch.</param>
    public static void ThrowIfNonFinite(double crossEntropy, double? auxiliary, int epoch, int step, string methodId)
    {
        if (double.IsFinite(crossEntropy) && (auxiliary is null || double.IsFinite(auxiliary.Value))) return;
        static string Show(double v) => v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture);
        var term = !double.IsFinite(crossEntropy)
            ? $"the cross entropy is {Show(crossEntropy)}" + (auxiliary is { } a ? $" (auxiliary loss {Show(a)})" : "")
            : $"the auxiliary loss of method '{methodId}' is {Show(auxiliary!.Value)} (cross entropy {Show(crossEntropy)})";
        throw new NonFiniteLossException($"training stopped at epoch {epoch + 1}, step {step + 1}: {term}. Nothing was saved after " +
            "the last good step (the run directory keeps its last checkpoint, if any). Lower Trainer:BaseLr, set Trainer:ClipGradNorm, " +
            "or check Data:Mean, Data:Std and the images");
    }
}

/// <summary>An epoch had no image to train on: every training image was skipped as bad, or the training set is empty.</summary>
public sealed class NoTrainingImagesException(int epoch, IBatchSource train) : Exception(
    $"epoch {epoch + 1} had no image to train on: " + (train.SkippedImages > 0
        ? $"all {train.SampleCount} training images were skipped as bad (Data:SkipBadImages), e.g. {train.SkipExample}"
        : "the training set is empty"));
