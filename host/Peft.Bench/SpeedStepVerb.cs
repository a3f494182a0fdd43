using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Configuration;
using Peft.Data;
using Peft.Host.Hosting;
using Peft.Host.Plugins;
using Peft.Host.Verbs;
using Peft.Training;
using Peft.Vision;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Bench;

/// <summary>One side of a speed comparison: what `peft bench step` and tests/reference/speed_reference.py print.</summary>
public sealed record StepMeasurement
{
    public required string Framework { get; init; }
    public required string Model { get; init; }
    public required string Method { get; init; }
    public int Batch { get; init; }
    public int Threads { get; init; }
    public double TrainStepSeconds { get; init; }
    public double EvalStepSeconds { get; init; }
    public double TrainImagesPerSecond { get; init; }
    public double EvalImagesPerSecond { get; init; }
    public long PeakResidentBytes { get; init; }
    public long TrainableParameters { get; init; }

    /// <summary>Share of the training loop spent waiting for the data pipeline (Peft only: PyTorch's side reuses one tensor).</summary>
    public double? DataWaitShare { get; init; }

    public IReadOnlyList<double> TrainStepsSeconds { get; init; } = [];
    public IReadOnlyList<double> EvalStepsSeconds { get; init; } = [];

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };
}

/// <summary>
/// `peft bench step`: one method on one backbone preset (224 px, random weights), trained by the ordinary
/// <see cref="Trainer"/> for warm-up + timed steps on Fashion-MNIST images through the real pipeline (grey → RGB,
/// bilinear 28 → 224, normalise; one loader worker), then evaluated. Step times come from the trainer's per-step
/// progress reports, less the time spent waiting for data; the median is reported. Run by `peft bench speed`, one
/// process per measurement so that peak resident memory is the measurement's own.
/// </summary>
public sealed class SpeedStepVerb(IConfiguration configuration, MethodCatalog methods) : IVerb
{
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var options = HyperParameters.Load<SpeedBenchOptions>(configuration).GetValueOrThrow();
        var job = new JobFactory(configuration, methods);
        var (entry, methodOptions, recipe) = job.ResolveMethod();
        var label = options.Method;
        var spec = VitSpec.Preset(options.Model);
        torch.manual_seed((long)job.Run.Seed);
        using var vit = new VisionTransformer(spec, BackboneKind.Supervised);
        vit.eval();
        if (job.Device.type != DeviceType.CPU) vit.to(job.Device);

        var batch = options.BatchSize;
        var fashionTrain = FashionMnist.Train(job.Data.Root);
        var fashionTest = FashionMnist.Test(job.Data.Root);
        // Two batches ahead are plenty for steps of seconds; the pipeline runs on one worker beside the training threads.
        var data = job.Data with { Mean = [0.5, 0.5, 0.5], Std = [0.5, 0.5, 0.5], Workers = 1, Prefetch = 2, Augment = false };
        var train = fashionTrain.Subset([.. Enumerable.Range(0, (options.WarmupSteps + options.Steps) * batch)]);
        var test = fashionTest.Subset([.. Enumerable.Range(0, (1 + options.EvalSteps) * batch)]);
        using var method = JobFactory.CreateMethod(entry, vit, fashionTrain.ClassCount, methodOptions, job.Run.Seed);
        var perClass = method.Sampling == BatchSampling.ClassBalanced ? JobFactory.SamplesPerClass(batch, fashionTrain.ClassCount) : 0;
        var trainSource = job.Loader(train, spec, batch, training: true, perClass, data);
        var runDir = Path.GetFullPath(Path.Combine(options.RunsDir, $"{options.Model}-{label}-run"));
        if (Directory.Exists(runDir)) Directory.Delete(runDir, recursive: true);
        var trainer = new Trainer(new TrainerSetup
        {
            Backbone = vit, Method = method, MethodId = entry.Name, MethodOptions = methodOptions,
            Recipe = recipe with { BatchSize = batch, Epochs = 1, WarmupEpochs = 0, EvalEvery = 1, CheckpointEvery = 0, CacheFeatures = false },
            Train = trainSource, Test = job.Loader(test, spec, batch, training: false, data: data),
            RunDirectory = runDir, Resume = false,
        });
        var clock = new StepClock(() => trainSource.WaitTime);
        Log.Information("Measuring {Method} on {Spec}: {Warmup} + {Steps} training steps and 1 + {Eval} evaluation batches of {Batch}, {Threads} threads",
            label, spec, options.WarmupSteps, options.Steps, options.EvalSteps, batch, torch.get_num_threads());
        var result = trainer.Run(clock, cancellationToken);

        var trainSteps = clock.TrainSteps.Skip(options.WarmupSteps).Where(double.IsFinite).ToList();
        var evalSteps = clock.EvalSteps.Skip(1).Where(double.IsFinite).ToList();
        var measurement = new StepMeasurement
        {
            Framework = $"peft (TorchSharp {Peft.Engine.TorchEngine.TorchSharpVersion}, libtorch {torch.__version__})", Model = options.Model, Method = label, Batch = batch, Threads = torch.get_num_threads(),
            TrainStepSeconds = Median(trainSteps), EvalStepSeconds = Median(evalSteps),
            TrainImagesPerSecond = batch / Median(trainSteps), EvalImagesPerSecond = batch / Median(evalSteps),
            PeakResidentBytes = clock.PeakAfterEvaluation, TrainableParameters = result.TrainableParameters, DataWaitShare = result.DataWaitShare,
            TrainStepsSeconds = clock.TrainSteps, EvalStepsSeconds = clock.EvalSteps,
        };
        var json = JsonSerializer.Serialize(measurement, StepMeasurement.Json);
        if (options.StepOutput is { Length: > 0 } output) File.WriteAllText(output, json + "\n");
        Console.WriteLine(json);
        Directory.Delete(runDir, recursive: true);
        return Task.FromResult(ExitCodes.Success);
    }

    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>
    /// Times steps from the trainer's progress reports: a training report follows each optimizer step, an evaluation
    /// report each batch. A step's time is the gap since the previous report less the data wait in it.
    /// </summary>
    private sealed class StepClock(Func<TimeSpan> waitTime) : IProgress<TrainingProgress>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private TimeSpan _last, _lastWait;
        private string? _phase;

        public List<double> TrainSteps { get; } = [];
        public List<double> EvalSteps { get; } = [];
        public long PeakAfterEvaluation { get; private set; }

        public void Report(TrainingProgress p)
        {
            var now = _clock.Elapsed;
            var wait = waitTime();
            if (p.Phase == "train")
            {
                // The first step's gap starts at the first batch: the trainer's start-up (DA-VPT's clustering) is not a step.
                if (_phase == "train") TrainSteps.Add((now - _last - (wait - _lastWait)).TotalSeconds);
                else TrainSteps.Add(double.NaN);
            }
            else if (_phase == p.Phase)
                EvalSteps.Add((now - _last).TotalSeconds);
            else
                EvalSteps.Add(double.NaN);
            if (p.Phase != "train" && p.Step == p.StepsPerEpoch) PeakAfterEvaluation = ProcessMemory.PeakResidentBytes();
            (_last, _lastWait, _phase) = (_clock.Elapsed, waitTime(), p.Phase);
        }
    }
}
