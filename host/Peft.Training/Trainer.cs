using System.Diagnostics;
using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;
using Peft.Engine;
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
    public required IBatchSource Train { get; init; }
    public IBatchSource? Val { get; init; }
    public IBatchSource? Test { get; init; }

    /// <summary>The run directory: config.json, metrics.jsonl, results.json, adapter.safetensors, checkpoint/, tensorboard/.</summary>
    public required string RunDirectory { get; init; }

    /// <summary>The resolved configuration, written to config.json.</summary>
    public string? ConfigJson { get; init; }

    /// <summary>Resume from the run directory's checkpoint when there is one; false: start over, discarding what the directory holds.</summary>
    public bool Resume { get; init; } = true;

    /// <summary>
    /// What else decides the result besides what the trainer is given (the host's Run, Backbone and Data settings, the
    /// dataset's identity, the plugin's build): with the method, its options, the recipe and the pretrained weights, the
    /// run's <see cref="RunIdentity"/>.
    /// </summary>
    public RunIdentity? Identity { get; init; }

    /// <summary>The directory is a cache of whatever setup runs in it (pre-training): a run with other settings there is discarded, not refused.</summary>
    public bool DiscardOtherRuns { get; init; }

    /// <summary>The precision the backbone was put in (VisionTransformer.ToPrecision); the trainer keeps fp32 masters and scales fp16 losses.</summary>
    public Precision Precision { get; init; } = Precision.Fp32;
}

/// <summary>One progress report, for the host's display.</summary>
public sealed record TrainingProgress(string Phase, int Epoch, int Epochs, int Step, int StepsPerEpoch, double Loss, double Accuracy,
    double ImagesPerSecond, TimeSpan Eta, double Lr);

/// <summary>
/// The training loop, in one place: forward with the method's hooks → cross entropy + the method's
/// auxiliary loss → backward → clipping → optimizer → schedule, with evaluation (<see cref="Evaluator"/>),
/// metrics, checkpoints (trainable tensors, optimizer, RNG, position) and exact resume.
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly TrainerSetup _setup;
    private readonly IReadOnlyList<(string Name, Parameter Parameter)> _modelTrainables;
    private readonly IReadOnlyList<(string Name, Parameter Parameter)> _trainables; // fp32: what the optimizer and the run directory see
    private readonly MixedPrecision _precision;
    private readonly string _pretrainedIdentity;
    private readonly RunDirectory _run;
    private readonly Evaluator _evaluator;
    private readonly RunIdentity _identity;

    public Trainer(TrainerSetup setup)
    {
        _setup = setup;
        // The identity of the pretrained weights, taken before any backbone tensor is tuned.
        _pretrainedIdentity = setup.Backbone.Identity;
        _modelTrainables = Trainables.Of(setup.Method, setup.Backbone);
        _precision = new MixedPrecision(setup.Precision, _modelTrainables);
        _trainables = _precision.Trainables;
        _run = new RunDirectory(setup.RunDirectory);
        _evaluator = new Evaluator(setup.Backbone, setup.Method);
        // Trainer:CheckpointEvery only decides how often progress is saved, not what is computed.
        _identity = new RunIdentity().With(setup.Identity).With("Method:Name", setup.MethodId).With("Method:Options", setup.MethodOptions)
            .With("Trainer", setup.Recipe, nameof(TrainerOptions.CheckpointEvery))
            .With("Backbone:Identity", _pretrainedIdentity);
    }

    /// <summary>Releases the fp32 master copies of reduced backbone tensors (<see cref="TrainableParameters"/> holds them until then).</summary>
    public void Dispose() => _precision.Dispose();

    /// <summary>What decides this run's result; recorded in the run directory and in its checkpoints.</summary>
    public RunIdentity Identity => _identity;

    /// <summary>True when <see cref="Run"/> found the run already finished in its directory and only reloaded it.</summary>
    public bool AlreadyComplete { get; private set; }

    /// <summary>Parameters this run trains (method and tuned backbone tensors).</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters => _trainables;

    /// <summary>What the loop reads: the setup's sources, or (linear probing) sources of cached pooled features.</summary>
    private sealed record Sources(IBatchSource Train, IBatchSource? Val, IBatchSource? Test, bool Pooled, TimeSpan CacheTime) : IDisposable
    {
        public void Dispose()
        {
            if (!Pooled) return;
            foreach (var cached in new[] { Train, Val, Test }.OfType<IDisposable>()) cached.Dispose();
        }
    }

    /// <exception cref="RunInUseException">Another process runs in the directory.</exception>
    /// <exception cref="ConfigurationException">The directory holds a run with other settings (and Resume is set).</exception>
    /// <exception cref="NonFiniteLossException">The loss became NaN or infinite; the last checkpoint is the last good state.</exception>
    public TrainingResult Run(IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var hold = RunLock.Acquire(_run.Path);
        _run.Begin(_identity, _setup.Resume, _setup.ConfigJson, _setup.DiscardOtherRuns);
        _run.MarkStatus(RunStatus.Running);
        try
        {
            var result = Train(progress, cancellationToken);
            _run.MarkStatus(RunStatus.Finished);
            return result;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _run.MarkStatus(RunStatus.Interrupted);
            throw;
        }
        catch (Exception e)
        {
            _run.MarkStatus(RunStatus.Failed, e.Message);
            throw;
        }
    }

    private TrainingResult Train(IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var (backbone, method, recipe) = (_setup.Backbone, _setup.Method, _setup.Recipe);
        foreach (var p in backbone.Module.parameters()) p.requires_grad = false;
        foreach (var (_, p) in _modelTrainables.Concat(_trainables)) p.requires_grad = true;

        var stepsPerEpoch = _setup.Train.BatchCount;
        using var optimizer = OptimizerFactory.Create(recipe, _precision.Groups(method.ParameterGroups(recipe, backbone)), _setup.Recipe.BatchSize);
        var perStep = recipe.ScheduleUnit == ScheduleUnit.Step;

        var state = new RunState();
        var scheduleStep = 0;
        if (_setup.Resume && _run.HasCheckpoint)
        {
            (state, scheduleStep) = _run.LoadCheckpoint(method, _trainables, optimizer, _identity.Hash);
            _precision.Restore((state.LossScale ?? _precision.Scale, state.CleanSteps, state.SkippedSteps));
            _precision.CopyMastersToModel();
            // A finished run is not trained again: its checkpoint restored the trained tensors, its results stand.
            if (state.Epoch >= recipe.Epochs && _run.ReadResults() is { } finished)
            {
                AlreadyComplete = true;
                return finished;
            }
        }
        // Metrics written after the checkpoint (or by an earlier run that is not resumed) are not this run's.
        _run.TruncateMetrics(state.Epoch);
        // After the optimizer state is restored: the schedule sets every group's lr for its step index.
        var schedule = OptimizerFactory.Schedule(optimizer, recipe, stepsPerEpoch, _setup.Recipe.BatchSize, scheduleStep);

        // Linear probing's forward passes run without autograd: a heap that keeps freed blocks would fragment (TorchEngine).
        using var hostMemory = method.FrozenFeatures ? TorchEngine.HostMemoryForFrozenForward() : null;
        using var sources = method.FrozenFeatures && recipe.CacheFeatures ? CachedSources(cancellationToken) : Uncached();

        if (state.Epoch == 0 && state.GlobalStep == 0)
            method.OnTrainingStart(new EpochContext(0, backbone, () => EpochBatches(0, cancellationToken)));

        var trainClock = new Stopwatch();
        long trainImages = 0;
        var waitAtStart = sources.Train.WaitTime;
        double evalRate = 0;
        for (var epoch = state.Epoch; epoch < recipe.Epochs; epoch++)
        {
            method.Module.train(true);
            backbone.Module.train(method.BackboneInTrainMode);
            double lossSum = state.EpochLossSum, auxSum = state.EpochAuxSum;
            long correct = state.EpochCorrect, seen = state.EpochSeen;
            var epochClock = Stopwatch.StartNew();
            long seenNow = 0; // images trained in this process this epoch, for the rate
            var batchIndex = 0;
            var auxiliary = state.EpochAuxSum != 0;
            foreach (var batch in sources.Train.Batches(epoch, CancellationToken.None))
            {
                using (batch)
                {
                    // A resumed run replays the epoch's deterministic order and skips what it already trained on.
                    if (batchIndex < state.BatchInEpoch) { batchIndex++; continue; }
                    if (cancellationToken.IsCancellationRequested)
                    {
                        _run.SaveCheckpoint(WithScaler(state) with
                            {
                                Epoch = epoch, BatchInEpoch = batchIndex, EpochLossSum = lossSum, EpochAuxSum = auxSum, EpochCorrect = correct,
                                EpochSeen = seen,
                            }, method, _trainables, optimizer, scheduleStep, _setup.MethodId, _setup.MethodOptions, _pretrainedIdentity, _identity.Hash);
                        cancellationToken.ThrowIfCancellationRequested();
                    }
                    trainClock.Start();
                    var step = TrainStep(batch, optimizer, recipe, sources.Pooled);
                    NonFiniteLossException.ThrowIfNonFinite(step.CrossEntropy, step.Auxiliary, epoch, batchIndex, _setup.MethodId);
                    if (perStep)
                    {
                        schedule.step();
                        scheduleStep++;
                    }
                    trainClock.Stop();
                    var n = batch.Labels.size(0);
                    lossSum += step.CrossEntropy * n;
                    if (step.Auxiliary is { } aux)
                    {
                        auxSum += aux * n;
                        auxiliary = true;
                    }
                    correct += step.Correct;
                    seen += n;
                    seenNow += n;
                    trainImages += n;
                    batchIndex++;
                    state = state with { GlobalStep = state.GlobalStep + 1 };
                    var rate = seenNow / Math.Max(1e-9, epochClock.Elapsed.TotalSeconds);
                    var remaining = (recipe.Epochs - epoch - 1) * stepsPerEpoch + (stepsPerEpoch - batchIndex);
                    progress?.Report(new TrainingProgress("train", epoch, recipe.Epochs, batchIndex, stepsPerEpoch, (lossSum + auxSum) / seen,
                        (double)correct / seen, rate, TimeSpan.FromSeconds(remaining * _setup.Recipe.BatchSize / Math.Max(rate, 1e-9)),
                        optimizer.ParamGroups.First().LearningRate));
                }
            }
            if (seen == 0) throw new NoTrainingImagesException(epoch, _setup.Train);
            var lr = optimizer.ParamGroups.First().LearningRate;
            if (!perStep)
            {
                schedule.step();
                scheduleStep++;
            }
            state = state with { BatchInEpoch = 0, EpochLossSum = 0, EpochAuxSum = 0, EpochCorrect = 0, EpochSeen = 0 };

            method.OnEpochEnd(new EpochContext(epoch, backbone, () => EpochBatches(epoch, cancellationToken)));

            var metrics = new EpochMetrics(epoch + 1, state.GlobalStep, lr, seen == 0 ? double.NaN : lossSum / seen,
                seen == 0 ? double.NaN : (double)correct / seen, seenNow / Math.Max(1e-9, epochClock.Elapsed.TotalSeconds),
                AuxiliaryLoss: auxiliary && seen > 0 ? auxSum / seen : null);
            var last = epoch + 1 == recipe.Epochs;
            if (last || (epoch + 1) % recipe.EvalEvery == 0)
            {
                var val = Evaluate(sources.Val, "val", sources.Pooled, progress, cancellationToken);
                var test = Evaluate(sources.Test, "test", sources.Pooled, progress, cancellationToken);
                evalRate = test?.ImagesPerSecond ?? val?.ImagesPerSecond ?? evalRate;
                metrics = metrics with { Val = val?.Top1, Test = test?.Top1 };
                // Best-validation reporting; test is never used to select.
                if (metrics.Val is { } v && (state.BestVal is null || v > state.BestVal))
                    state = state with { BestEpoch = epoch + 1, BestVal = v, TestAtBestVal = metrics.Test };
            }
            _run.AppendMetrics(metrics);
            state = state with { Epoch = epoch + 1, Last = metrics };
            if (last || (recipe.CheckpointEvery > 0 && (epoch + 1) % recipe.CheckpointEvery == 0))
                _run.SaveCheckpoint(WithScaler(state), method, _trainables, optimizer, scheduleStep, _setup.MethodId, _setup.MethodOptions, _pretrainedIdentity, _identity.Hash);
        }

        // Ctrl+C after the last checkpoint: the checkpoint is consistent; the results are written by the next run, which
        // finds every epoch done and only reports.
        cancellationToken.ThrowIfCancellationRequested();
        var trainWait = (sources.Train.WaitTime - waitAtStart).TotalSeconds;
        var result = new TrainingResult
        {
            Method = _setup.MethodId,
            MethodOptionsHash = _setup.MethodOptions.ContentHash(),
            BackboneIdentity = _pretrainedIdentity,
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
            DataWaitShare = trainWait / Math.Max(1e-9, trainClock.Elapsed.TotalSeconds + trainWait),
            CachedFeatures = sources.Pooled,
            FeatureCacheSeconds = sources.CacheTime.TotalSeconds,
            PeakResidentBytes = ProcessMemory.PeakResidentBytes(),
            SkippedImages = _setup.Train.SkippedImages + (_setup.Val?.SkippedImages ?? 0) + (_setup.Test?.SkippedImages ?? 0),
            Device = backbone.Device.ToString(),
            Precision = _setup.Precision,
            SkippedSteps = _precision.SkippedSteps,
        };
        _run.WriteResults(result);
        _run.WriteAdapter(method, _trainables, _setup.MethodId, _setup.MethodOptions, _pretrainedIdentity, backbone.Spec,
            backbone.Device.ToString(), _setup.Precision);
        return result;
    }

    private RunState WithScaler(RunState state) =>
        state with { LossScale = _precision.Scale, CleanSteps = _precision.State.CleanSteps, SkippedSteps = _precision.SkippedSteps };

    private readonly record struct StepOutcome(double CrossEntropy, double? Auxiliary, long Correct);

    private StepOutcome TrainStep(LabeledBatch batch, OptimizerHelper optimizer, TrainerOptions recipe, bool pooledInputs)
    {
        using var scope = NewDisposeScope();
        var (inputs, labels) = batch.On(_setup.Backbone.Device);
        // With cached features the batch holds pooled features already (FrozenFeatures: no hooks, no auxiliary loss).
        var trace = pooledInputs ? null : _setup.Backbone.Forward(inputs, _setup.Method);
        var logits = _setup.Method.Head(trace?.Pooled ?? inputs);
        var crossEntropy = nn.functional.cross_entropy(logits, labels, label_smoothing: recipe.LabelSmoothing);
        var auxiliary = trace is null ? null : _setup.Method.AuxiliaryLoss(trace, labels);
        var total = auxiliary is null ? crossEntropy : crossEntropy.add(auxiliary);
        (_precision.Scale == 1 ? total : total.mul(_precision.Scale)).backward();
        // fp32 master gradients, unscaled; an fp16 overflow skips the step (its scale backs off).
        if (_precision.FinishGradients())
        {
            if (recipe.ClipGradValue > 0) nn.utils.clip_grad_value_(_trainables.Select(p => p.Parameter), recipe.ClipGradValue);
            if (recipe.ClipGradNorm > 0) nn.utils.clip_grad_norm_(_trainables.Select(p => p.Parameter), recipe.ClipGradNorm);
            optimizer.step();
            // The model's reduced copies follow their masters at once, so evaluation and the next step see this update.
            _precision.CopyMastersToModel();
            _setup.Method.AfterOptimizerStep();
        }
        optimizer.zero_grad();
        // The step's logged scalars come back to the host in one transfer (one synchronisation on a GPU).
        var figures = stack([crossEntropy.detach(), auxiliary?.detach() ?? zeros_like(crossEntropy), logits.argmax(1).eq(labels).sum().to(ScalarType.Float32)])
            .to(ScalarType.Float64).cpu().data<double>().ToArray();
        return new(figures[0], auxiliary is null ? null : figures[1], (long)figures[2]);
    }

    private EvaluationResult? Evaluate(IBatchSource? source, string split, bool pooled, IProgress<TrainingProgress>? progress,
        CancellationToken cancellationToken) =>
        source is null ? null : _evaluator.Evaluate(source, split, pooled, progress, cancellationToken);

    private Sources Uncached() => new(_setup.Train, _setup.Val, _setup.Test, Pooled: false, TimeSpan.Zero);

    /// <summary>
    /// Linear probing on deterministic data: one no-grad forward pass per image gives its pooled feature, which every
    /// epoch then reuses. Exact: the frozen forward pass would recompute the same numbers each epoch, and the cached
    /// sources replay the same batches in the same order. Sources that cannot be cached (augmentation) are read as they are.
    /// </summary>
    private Sources CachedSources(CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var train = _setup.Train.CacheFeatures(_evaluator.Featurize, cancellationToken);
        if (train is null) return Uncached();
        var val = _setup.Val?.CacheFeatures(_evaluator.Featurize, cancellationToken);
        var test = _setup.Test?.CacheFeatures(_evaluator.Featurize, cancellationToken);
        if ((_setup.Val is not null && val is null) || (_setup.Test is not null && test is null))
        {
            foreach (var t in new[] { train, val, test }) t?.Dispose();
            return Uncached();
        }
        return new Sources(train, val, test, Pooled: true, clock.Elapsed);
    }

    /// <summary>An epoch's batches on the backbone's device, for a method's callbacks (DA-VPT's class statistics).</summary>
    private IEnumerable<(Tensor Images, Tensor Labels)> EpochBatches(int epoch, CancellationToken cancellationToken)
    {
        foreach (var batch in _setup.Train.Batches(epoch, cancellationToken))
            using (batch)
            {
                // No dispose scope across the yield: the caller's own tensors would land in it.
                var (images, labels) = batch.On(_setup.Backbone.Device);
                try
                {
                    yield return (images, labels);
                }
                finally
                {
                    if (!ReferenceEquals(images, batch.Images))
                    {
                        images.Dispose();
                        labels.Dispose();
                    }
                }
            }
    }
}
