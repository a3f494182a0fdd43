using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Backbone;
using Peft.Abstractions.Options;
using Peft.Configuration;
using Peft.Host.Hosting;
using Peft.Host.Plugins;
using Peft.Training;
using Peft.Training.Baselines;
using Peft.Vision;
using Peft.Vision.Checkpoints;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Host.Verbs;

/// <summary>
/// `peft pretrain`: supervised pre-training of the Backbone from scratch (AdamW, per-step warm-up +
/// cosine) on the Pretrain classes of the Data set, written as a safetensors checkpoint with timm
/// keys. Cached: a checkpoint written with the same settings is reused; an interrupted one resumes.
/// </summary>
public sealed class PretrainVerb(IConfiguration configuration, MethodCatalog methods) : IVerb
{
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var job = new JobFactory(configuration, methods);
        var options = HyperParameters.Load<PretrainOptions>(configuration).GetValueOrThrow();
        var output = Path.GetFullPath(options.Output);
        var data = job.Data with { Classes = options.Classes, TrainSamples = options.TrainSamples, ValSamples = 0 };
        var shape = job.Backbone with { Checkpoint = null };
        var key = ContentHashing.HashText(string.Join("|", ContentHashing.CanonicalText(shape), ContentHashing.CanonicalText(data),
            ContentHashing.CanonicalText(options), job.Run.Seed.ToString(CultureInfo.InvariantCulture)));
        var sidecar = output + ".json";
        if (File.Exists(output) && File.Exists(sidecar) && JsonDocument.Parse(File.ReadAllText(sidecar)).RootElement.GetProperty("key").GetString() == key)
        {
            Log.Information("Pre-trained backbone {Output} is up to date (settings {Key}); nothing to do", output, key);
            return Task.FromResult(ExitCodes.Success);
        }

        torch.manual_seed((long)job.Run.Seed);
        using var vit = new VisionTransformer(VitSpec.From(shape), BackboneKind.Supervised, options.DropRate);
        var task = JobFactory.LoadTask(data, job.Run.Seed, shape.ImageSize);
        Log.Information("Pre-training {Spec} on {Count} images of {Classes} classes for {Epochs} epochs", vit.Spec, task.Train.Count,
            task.NumClasses, options.Epochs);
        var baseline = new BaselineOptions();
        if (job.Device.type != DeviceType.CPU) vit.to(job.Device);
        using var method = new BaselineMethod(BaselineKind.Full, vit, task.NumClasses, baseline);
        if (job.Device.type != DeviceType.CPU) method.Module.to(job.Device);
        var recipe = new TrainerOptions
        {
            Epochs = options.Epochs, BatchSize = options.BatchSize, Optimizer = OptimizerKind.AdamW, BaseLr = options.Lr, ScaleLrByBatch = false, WeightDecay = options.WeightDecay,
            WarmupEpochs = options.WarmupEpochs, ScheduleUnit = ScheduleUnit.Step, EvalEvery = options.Epochs, CheckpointEvery = 1, ClipGradNorm = 1.0,
        };
        using var trainer = new Trainer(new TrainerSetup
        {
            Backbone = vit, Method = method, MethodId = "pretrain", MethodOptions = baseline, Recipe = recipe,
            Train = job.Loader(task.Train, vit.Spec, options.BatchSize, training: true, data: data),
            Test = job.Loader(task.Test, vit.Spec, 256, training: false, data: data),
            RunDirectory = output + ".run", ConfigJson = JobFactory.ResolvedJson(configuration),
            Identity = new RunIdentity().With("Pretrain:Settings", key).With("Data:Identity", task.Identity()), DiscardOtherRuns = true,
        });
        using var display = new ProgressDisplay(Log.Logger, "pretrain");
        var result = trainer.Run(display, cancellationToken);

        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        VitCheckpoints.Save(vit, output);
        File.WriteAllText(sidecar, JsonSerializer.Serialize(new
        {
            key, test_top1 = result.LastEpoch?.Test, epochs = options.Epochs, images_per_second = result.TrainImagesPerSecond, spec = vit.Spec.ToString(),
        }, new JsonSerializerOptions { WriteIndented = true }));
        Log.Information("Pre-trained backbone written to {Output}: test top-1 {Top1:P2} on its {Classes} classes", output, result.LastEpoch?.Test,
            task.NumClasses);
        return Task.FromResult(ExitCodes.Success);
    }
}
