using Peft.Abstractions.Options;
namespace Peft.Training;

/// <summary>One epoch's line in metrics.jsonl.</summary>
/// <param name="Loss">The epoch's mean cross entropy.</param>
/// <param name="Time">When the epoch ended (Unix seconds).</param>
/// <param name="AuxiliaryLoss">The epoch's mean auxiliary loss (DA-VPT's), added to the cross entropy for training; null for none.</param>
public sealed record EpochMetrics(int Epoch, long Step, double Lr, double Loss, double TrainAccuracy, double ImagesPerSecond,
    double? Val = null, double? Test = null, double? AuxiliaryLoss = null, long? Time = null);

/// <summary>Where a run stands: what a checkpoint restores.</summary>
public sealed record RunState
{
    /// <summary>Epochs completed.</summary>
    public int Epoch { get; init; }

    /// <summary>Batches of epoch <see cref="Epoch"/> already trained on (mid-epoch checkpoints).</summary>
    public int BatchInEpoch { get; init; }

    public long GlobalStep { get; init; }

    /// <summary>Running sums of the epoch in progress, so a mid-epoch resume reports the same epoch metrics.</summary>
    public double EpochLossSum { get; init; }
    public double EpochAuxSum { get; init; }

    /// <summary>The fp16 loss scaler's state (null for other precisions and older checkpoints).</summary>
    public double? LossScale { get; init; }
    public int CleanSteps { get; init; }
    public int SkippedSteps { get; init; }
    public long EpochCorrect { get; init; }
    public long EpochSeen { get; init; }

    public int? BestEpoch { get; init; }
    public double? BestVal { get; init; }
    public double? TestAtBestVal { get; init; }
    public EpochMetrics? Last { get; init; }
}

/// <summary>results.json: what a run reports.</summary>
public sealed record TrainingResult
{
    public required string Method { get; init; }
    public required string MethodOptionsHash { get; init; }
    public required string BackboneIdentity { get; init; }
    public long TrainableParameters { get; init; }
    public long TrainableParametersWithoutHead { get; init; }
    public long TotalParameters { get; init; }
    public int Epochs { get; init; }

    /// <summary>The last epoch's metrics (VTAB reports last-epoch test top-1).</summary>
    public EpochMetrics? LastEpoch { get; init; }

    public int? BestEpoch { get; init; }
    public double? BestVal { get; init; }
    public double? TestAtBestVal { get; init; }
    public double TrainImagesPerSecond { get; init; }
    public double EvalImagesPerSecond { get; init; }

    /// <summary>Share of training time spent waiting for data.</summary>
    public double DataWaitShare { get; init; }

    public long PeakResidentBytes { get; init; }

    /// <summary>The head trained on features computed once (TrainerOptions.CacheFeatures), and the time that took.</summary>
    public bool CachedFeatures { get; init; }
    public double FeatureCacheSeconds { get; init; }

    /// <summary>Images skipped as missing or corrupt (training, validation and test), with Data:SkipBadImages.</summary>
    public int SkippedImages { get; init; }

    /// <summary>Where and in what precision the run computed.</summary>
    public string Device { get; init; } = "cpu";
    public Precision Precision { get; init; }

    /// <summary>Optimizer steps skipped because fp16's scaled gradients overflowed.</summary>
    public int SkippedSteps { get; init; }
}

/// <summary>Process memory figures from /proc/self/status.</summary>
public static class ProcessMemory
{
    public static long PeakResidentBytes() => Read("VmHWM:");
    public static long ResidentBytes() => Read("VmRSS:");

    private static long Read(string field)
    {
        const string status = "/proc/self/status";
        return File.Exists(status) ? Parse(File.ReadLines(status), field) : 0;
    }

    /// <summary>
    /// The bytes of a "Field:\t   123456 kB" line of /proc/self/status, 0 when it is absent. The kernel pads the number
    /// with spaces to 8 columns after the tab, so a figure of 8 digits or more follows the tab directly: split on both.
    /// </summary>
    public static long Parse(IEnumerable<string> statusLines, string field)
    {
        var line = statusLines.FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
        var kb = line?[field.Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        return long.TryParse(kb, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v * 1024 : 0;
    }
}
