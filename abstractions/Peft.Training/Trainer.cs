using System.Diagnostics;
using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;
using Peft.Training.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Training;

/// <summary>Everything one training run needs.</summary>
public sealed class TrainerSetup
{
    public required IVisionBackbone Backbone { get; init; }
    public required IPeftMethod Method { get; init; }
    public required string MethodId { get; init; }
    public required IHyperParameters MethodOptions { get; init; }
    public required TrainerOptions Recipe { get; init; }
    public required int BatchSize { get; init; }
    public required IBatchSource Train { get; init; }
    public IBatchSource? Val { get; init; }
    public IBatchSource? Test { get; init; }

    /// <summary>The run directory: config.json, metrics.jsonl, results.json, adapter.safetensors, checkpoint/.</summary>
    public required string RunDirectory { get; init; }

    /// <summary>The resolved configuration, written to config.json.</summary>
    public string? ConfigJson { get; init; }

    /// <summary>Resume from the run directory's checkpoint when there is one.</summary>
    public bool Resume { get; init; } = true;
}

/// <summary>One progress report, for the host's display.</summary>
public sealed record TrainingProgress(string Phase, int Epoch, int Epochs, int Step, int StepsPerEpoch, double Loss, double Accuracy,
    double ImagesPerSecond, TimeSpan Eta, double Lr);

/// <summary>
/// The training loop, in one place: forward with the method's hooks → cross entropy + the method's
/// auxiliary loss → backward → clipping → optimizer → schedule, with evaluation, metrics,
/// checkpoints (trainable tensors, optimizer, RNG, position) and exact resume.
/// </summary>
public sealed class Trainer
{
    private readonly TrainerSetup _s;
    private readonly IReadOnlyList<(string Name, Parameter Parameter)> _trainables;
    private readonly string _backboneIdentity;
    private readonly RunDirectory _run;

    // The sources this run reads: the setup's, or their cached features (linear probing, see TrainerOptions.CacheFeatures).
    private IBatchSource _train;
    private IBatchSource? _val, _test;
    private bool _featuresCached;

    public Trainer(TrainerSetup setup)
    {
        _s = setup;
        // The identity of the pretrained weights, taken before any backbone tensor is tuned.
        _backboneIdentity = setup.Backbone.Identity;
        _trainables = Trainables.Of(setup.Method, setup.Backbone);
        _run = new RunDirectory(setup.RunDirectory);
        (_train, _val, _test) = (setup.Train, setup.Val, setup.Test);
    }

    /// <summary>True when <see cref="Run"/> found the run already finished in its directory and only reloaded it.</summary>
    public bool AlreadyComplete { get; private set; }

    /// <summary>Parameters this run trains (method and tuned backbone tensors).</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters => _trainables;

    public TrainingResult Run(IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        try
        {
            return RunLoop(progress, cancellationToken);
        }
        finally
        {
            if (_featuresCached)
            {
                foreach (var cached in new[] { _train, _val, _test }.OfType<IDisposable>()) cached.Dispose();
                (_train, _val, _test, _featuresCached) = (_s.Train, _s.Val, _s.Test, false);
            }
        }
    }

    // The time this run spent computing its feature cache (zero when it trains on images).
    private TimeSpan _featureCacheTime;

    private TrainingResult RunLoop(IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var (backbone, method, recipe) = (_s.Backbone, _s.Method, _s.Recipe);
        _run.Create(_s.ConfigJson);

        foreach (var p in backbone.Module.parameters()) p.requires_grad = false;
        foreach (var (_, p) in _trainables) p.requires_grad = true;

        var stepsPerEpoch = _train.BatchCount;
        using var optimizer = OptimizerFactory.Create(recipe, method.ParameterGroups(recipe, backbone), _s.BatchSize);
        var perStep = recipe.ScheduleUnit == "step";

        var state = new RunState();
        var scheduleStep = 0;
        if (_s.Resume && _run.HasCheckpoint)
        {
            (state, scheduleStep) = _run.LoadCheckpoint(method, _trainables, optimizer, _s.MethodId, _s.MethodOptions, _backboneIdentity);
            // A finished run is not trained again: its checkpoint restored the trained tensors, its results stand.
            if (state.Epoch >= recipe.Epochs && _run.ReadResults() is { } finished)
            {
                AlreadyComplete = true;
                return finished;
            }
            _run.TruncateMetrics(state.Epoch);
        }
        // After the optimizer state is restored: the schedule sets every group's lr for its step index.
        var schedule = OptimizerFactory.Schedule(optimizer, recipe, stepsPerEpoch, _s.BatchSize, scheduleStep);

        if (method.FrozenFeatures && recipe.CacheFeatures) CacheFeatures();

        if (state.Epoch == 0 && state.GlobalStep == 0)
            method.OnTrainingStart(new EpochContext(0, backbone, () => EpochBatches(0, cancellationToken)));

        var trainClock = new Stopwatch();
        long trainImages = 0;
        var waitAtStart = _train.WaitTime;
        for (var epoch = state.Epoch; epoch < recipe.Epochs; epoch++)
        {
            method.Module.train(true);
            backbone.Module.train(method.BackboneInTrainMode);
            double lossSum = state.EpochLossSum;
            long correct = state.EpochCorrect, seen = state.EpochSeen;
            var epochClock = Stopwatch.StartNew();
            long seenNow = 0; // images trained in this process this epoch, for the rate
            var batchIndex = 0;
            foreach (var batch in _train.Batches(epoch, CancellationToken.None))
            {
                using (batch)
                {
                    // A resumed run replays the epoch's deterministic order and skips what it already trained on.
                    if (batchIndex < state.BatchInEpoch) { batchIndex++; continue; }
                    if (cancellationToken.IsCancellationRequested)
                    {
                        _run.SaveCheckpoint(state with
                            {
                                Epoch = epoch, BatchInEpoch = batchIndex, EpochLossSum = lossSum, EpochCorrect = correct, EpochSeen = seen,
                            }, method, _trainables, optimizer, scheduleStep,
                            _s.MethodId, _s.MethodOptions, _backboneIdentity);
                        cancellationToken.ThrowIfCancellationRequested();
                    }
                    trainClock.Start();
                    var (loss, hits) = TrainStep(batch, optimizer, recipe);
                    if (perStep)
                    {
                        schedule.step();
                        scheduleStep++;
                    }
                    trainClock.Stop();
                    var n = batch.Labels.size(0);
                    lossSum += loss * n;
                    correct += hits;
                    seen += n;
                    seenNow += n;
                    trainImages += n;
                    batchIndex++;
                    state = state with { GlobalStep = state.GlobalStep + 1 };
                    var rate = seenNow / Math.Max(1e-9, epochClock.Elapsed.TotalSeconds);
                    var remaining = (recipe.Epochs - epoch - 1) * stepsPerEpoch + (stepsPerEpoch - batchIndex);
                    progress?.Report(new TrainingProgress("train", epoch, recipe.Epochs, batchIndex, stepsPerEpoch, lossSum / seen,
                        (double)correct / seen, rate, TimeSpan.FromSeconds(remaining * _s.BatchSize / Math.Max(rate, 1e-9)),
                        optimizer.ParamGroups.First().LearningRate));
                }
            }
            var lr = optimizer.ParamGroups.First().LearningRate;
            if (!perStep)
            {
                schedule.step();
                scheduleStep++;
            }
            state = state with { BatchInEpoch = 0, EpochLossSum = 0, EpochCorrect = 0, EpochSeen = 0 };

            method.OnEpochEnd(new EpochContext(epoch, backbone, () => EpochBatches(epoch, cancellationToken)));

            var metrics = new EpochMetrics(epoch + 1, state.GlobalStep, lr, seen == 0 ? double.NaN : lossSum / seen,
                seen == 0 ? double.NaN : (double)correct / seen, seenNow / Math.Max(1e-9, epochClock.Elapsed.TotalSeconds));
            var last = epoch + 1 == recipe.Epochs;
            if (last || (epoch + 1) % recipe.EvalEvery == 0)
            {
                metrics = metrics with { Val = Evaluate(_val, "val", progress), Test = Evaluate(_test, "test", progress) };
                // Best-validation reporting; test is never used to select.
                if (metrics.Val is { } v && (state.BestVal is null || v > state.BestVal))
                    state = state with { BestEpoch = epoch + 1, BestVal = v, TestAtBestVal = metrics.Test };
            }
            _run.AppendMetrics(metrics);
            state = state with { Epoch = epoch + 1, Last = metrics };
            if (last || (recipe.CheckpointEvery > 0 && (epoch + 1) % recipe.CheckpointEvery == 0))
                _run.SaveCheckpoint(state, method, _trainables, optimizer, scheduleStep, _s.MethodId, _s.MethodOptions, _backboneIdentity);
        }

        var evalRate = _lastEvalRate;
        var result = new TrainingResult
        {
            Method = _s.MethodId,
            MethodOptionsHash = _s.MethodOptions.ContentHash(),
            BackboneIdentity = _backboneIdentity,
            TrainableParameters = Trainables.Count(_trainables),
            TrainableParametersWithoutHead = Trainables.Count(_trainables.Where(p => !p.Name.StartsWith("head.", StringComparison.Ordinal))),
            TotalParameters = backbone.Module.parameters().Sum(p => p.numel()) + method.Module.parameters().Sum(p => p.numel()),
            Epochs = recipe.Epochs,
            LastEpoch = state.Last,
            BestEpoch = state.BestEpoch,
            BestVal = state.BestVal,
            TestAtBestVal = state.TestAtBestVal,
            TrainImagesPerSecond = trainImages / Math.Max(1e-9, trainClock.Elapsed.TotalSeconds),
            EvalImagesPerSecond = evalRate,
            DataWaitShare = (_train.WaitTime - waitAtStart).TotalSeconds / Math.Max(1e-9, trainClock.Elapsed.TotalSeconds + (_train.WaitTime - waitAtStart).TotalSeconds),
            CachedFeatures = _featuresCached,
            FeatureCacheSeconds = _featureCacheTime.TotalSeconds,
            PeakResidentBytes = ProcessMemory.PeakResidentBytes(),
            SkippedImages = _s.Train.SkippedImages + (_s.Val?.SkippedImages ?? 0) + (_s.Test?.SkippedImages ?? 0),
        };
        _run.WriteResults(result);
        _run.WriteAdapter(method, _trainables, _s.MethodId, _s.MethodOptions, _backboneIdentity, backbone.Spec);
        return result;
    }

    private (double Loss, long Correct) TrainStep(LabeledBatch batch, OptimizerHelper optimizer, TrainerOptions recipe)
    {
        using var scope = NewDisposeScope();
        // With cached features the batch holds pooled features already (FrozenFeatures: no hooks, no auxiliary loss).
        var trace = _featuresCached ? null : _s.Backbone.Forward(batch.Images, _s.Method);
        var logits = _s.Method.Head(trace?.Pooled ?? batch.Images);
        var loss = nn.functional.cross_entropy(logits, batch.Labels, label_smoothing: recipe.LabelSmoothing);
        var total = trace is not null && _s.Method.AuxiliaryLoss(trace, batch.Labels) is { } aux ? loss.add(aux) : loss;
        total.backward();
        if (recipe.ClipGradValue > 0) nn.utils.clip_grad_value_(_trainables.Select(p => p.Parameter), recipe.ClipGradValue);
        if (recipe.ClipGradNorm > 0) nn.utils.clip_grad_norm_(_trainables.Select(p => p.Parameter), recipe.ClipGradNorm);
        optimizer.step();
        _s.Method.AfterOptimizerStep();
        optimizer.zero_grad();
        var predicted = logits.argmax(1);
        return (loss.item<float>(), predicted.eq(batch.Labels).sum().item<long>());
    }

    private double _lastEvalRate;

    /// <summary>Top-1 accuracy of the current model on a split (null when the split is absent).</summary>
    public double? Evaluate(IBatchSource? source, string split = "eval", IProgress<TrainingProgress>? progress = null)
    {
        if (source is null) return null;
        _s.Method.Module.eval();
        _s.Backbone.Module.eval();
        using var noGrad = no_grad();
        long correct = 0, seen = 0;
        var clock = Stopwatch.StartNew();
        foreach (var batch in source.Batches(0, CancellationToken.None))
        {
            using (batch)
            using (NewDisposeScope())
            {
                var pooled = _featuresCached && (source == _val || source == _test) ? batch.Images : _s.Backbone.Forward(batch.Images, _s.Method).Pooled;
                var predicted = _s.Method.Head(pooled).argmax(1);
                correct += predicted.eq(batch.Labels).sum().item<long>();
                seen += batch.Labels.size(0);
            }
            progress?.Report(new TrainingProgress(split, 0, 0, (int)seen, source.SampleCount, double.NaN, (double)correct / seen,
                seen / Math.Max(1e-9, clock.Elapsed.TotalSeconds), TimeSpan.Zero, 0));
        }
        _lastEvalRate = seen / Math.Max(1e-9, clock.Elapsed.TotalSeconds);
        return seen == 0 ? null : (double)correct / seen;
    }

    /// <summary>
    /// Linear probing on deterministic data: one no-grad forward pass per image gives its pooled feature, which every
    /// epoch then reuses. Exact: the frozen forward pass would recompute the same numbers each epoch, and the cached
    /// sources replay the same batches in the same order. Sources that cannot be cached (augmentation) stay as they are.
    /// </summary>
    private void CacheFeatures()
    {
        var clock = Stopwatch.StartNew();
        _s.Backbone.Module.eval();
        _s.Method.Module.eval();
        Tensor Featurize(Tensor images)
        {
            using var noGrad = no_grad();
            return _s.Backbone.Forward(images, _s.Method).Pooled;
        }
        var train = _s.Train.CacheFeatures(Featurize);
        if (train is null) return;
        var val = _s.Val?.CacheFeatures(Featurize);
        var test = _s.Test?.CacheFeatures(Featurize);
        if ((_s.Val is not null && val is null) || (_s.Test is not null && test is null))
        {
            foreach (var t in new[] { train, val, test }) t?.Dispose();
            return;
        }
        (_train, _val, _test, _featuresCached) = (train, val, test, true);
        _featureCacheTime = clock.Elapsed;
    }

    private IEnumerable<(Tensor Images, Tensor Labels)> EpochBatches(int epoch, CancellationToken cancellationToken)
    {
        foreach (var batch in _s.Train.Batches(epoch, cancellationToken))
            yield return (batch.Images, batch.Labels);
    }
}
