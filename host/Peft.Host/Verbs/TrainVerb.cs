using System.Globalization;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Methods;
using Peft.Host.Hosting;
using Peft.Host.Plugins;
using Peft.Training;
using Serilog;
using Spectre.Console;

namespace Peft.Host.Verbs;

/// <summary>`peft train`: attach Method:Name to the Backbone, train it on Data with the recipe, evaluate and report.</summary>
public sealed class TrainVerb(IConfiguration configuration, MethodCatalog methods) : IVerb
{
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var job = new JobFactory(configuration, methods);
        var (entry, options, recipe) = job.ResolveMethod();
        var runDir = job.RunDirectory(entry, options, recipe);
        // Before anything is written there, peft.log included: a second process on the directory stops here, naming the first.
        using var hold = RunLock.Acquire(runDir);
        var console = Log.Logger;
        using var file = new LoggerConfiguration().MinimumLevel.Information().WriteTo.File(Path.Combine(runDir, "peft.log")).CreateLogger();
        using var log = new LoggerConfiguration().MinimumLevel.Information().WriteTo.Logger(console).WriteTo.Logger(file).CreateLogger();
        Log.Logger = log;
        try
        {
            using var vit = job.CreateBackbone(log);
            var task = job.LoadTask();
            using var method = JobFactory.CreateMethod(entry, vit, task.NumClasses, options, job.Run.Seed);
            var batch = recipe.BatchSize;
            // Methods with metric losses want B/k classes × k samples per batch: k = 2 (DA-VPT's default),
            // or more when the task has fewer than B/2 classes, so every batch still fills up.
            var perClass = method.Sampling == BatchSampling.ClassBalanced ? JobFactory.SamplesPerClass(batch, task.NumClasses) : 0;
            using var trainer = new Trainer(new TrainerSetup
            {
                Backbone = vit, Method = method, MethodId = entry.Name, MethodOptions = options, Recipe = recipe,
                Train = job.Loader(task.Train, vit.Spec, batch, training: true, perClass),
                Val = task.Val is null ? null : job.Loader(task.Val, vit.Spec, 256, training: false),
                Test = job.Loader(task.Test, vit.Spec, 256, training: false),
                RunDirectory = runDir, ConfigJson = JobFactory.ResolvedJson(configuration), Resume = job.Run.Resume, Precision = job.Run.Precision,
                Identity = job.Identity(entry, task),
            });
            log.Information("Training {Method} ({Trainable:N0} trainable parameters) on {Train} images, {Classes} classes; run directory {Run}",
                entry.Name, trainer.TrainableParameters.Sum(p => p.Parameter.numel()), task.Train.Count, task.NumClasses, runDir);
            using (var display = new ProgressDisplay(log, entry.Name))
            {
                var result = trainer.Run(display, cancellationToken);
                if (trainer.AlreadyComplete)
                    log.Information("Run {Run} was already complete; its results (set Run:Resume=false or another Run:Name to train again):", runDir);
                WriteResults(result);
            }
            return Task.FromResult(ExitCodes.Success);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The console shows the message (VerbService); the run's log keeps the stack trace.
            file.Error(e, "peft train failed: {Message}", e.Message);
            throw;
        }
        finally
        {
            Log.Logger = console;
        }
    }

    private static void WriteResults(TrainingResult r)
    {
        static string Pct(double? v) => v is { } x ? x.ToString("P2", CultureInfo.InvariantCulture) : "-";
        static string Int(long v) => v.ToString("N0", CultureInfo.InvariantCulture);
        var table = new Table().AddColumns("Result", r.Method);
        table.AddRow("test top-1 (last epoch)", Pct(r.LastEpoch?.Test));
        table.AddRow("val top-1 (last epoch)", Pct(r.LastEpoch?.Val));
        if (r.BestEpoch is { } best) table.AddRow($"test top-1 at best val (epoch {best})", Pct(r.TestAtBestVal));
        table.AddRow("trainable parameters", $"{Int(r.TrainableParameters)} ({Int(r.TrainableParametersWithoutHead)} without the head)");
        table.AddRow("total parameters", Int(r.TotalParameters));
        table.AddRow("training images/s", r.TrainImagesPerSecond.ToString("F0", CultureInfo.InvariantCulture));
        table.AddRow("evaluation images/s", r.EvalImagesPerSecond.ToString("F0", CultureInfo.InvariantCulture));
        table.AddRow("waiting for data", r.DataWaitShare.ToString("P1", CultureInfo.InvariantCulture));
        table.AddRow("peak resident memory", $"{r.PeakResidentBytes / 1048576.0:F0} MiB");
        if (r.SkippedImages > 0) table.AddRow("bad images skipped", Int(r.SkippedImages));
        AnsiConsole.Write(table);
    }
}
