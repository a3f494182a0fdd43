using System.Text;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Methods;
using Peft.Host.Hosting;
using Peft.Host.Plugins;
using Peft.Training;
using Serilog;

namespace Peft.Host.Verbs;

/// <summary>
/// `peft eval`: loads an adapter (Eval:Adapter, default: the run directory `peft train` would use)
/// onto the Backbone and reports top-1 on the Data's test split.
/// </summary>
public sealed class EvalVerb(IConfiguration configuration, MethodCatalog methods) : IVerb
{
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var job = new JobFactory(configuration, methods);
        var adapterPath = configuration["Eval:Adapter"] is { Length: > 0 } given ? Path.GetFullPath(given) : DefaultAdapter(job);
        if (!File.Exists(adapterPath)) throw new FileNotFoundException($"adapter file not found: {adapterPath} (train first, or set Eval:Adapter)");
        var (manifest, tensors) = RunDirectory.ReadAdapter(adapterPath);
        if (!methods.Methods.TryGetValue(manifest.Method, out var entry))
            throw new InvalidOperationException($"{adapterPath} was written by method '{manifest.Method}', which is not installed");

        // The adapter records its options; bind them back through the method's generated binder.
        var saved = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(manifest.Options))).Build();
        var options = entry.Factory.Options.Load(saved, "").GetValueOrThrow();
        using var vit = job.CreateBackbone(Log.Logger);
        if (vit.Identity != manifest.BackboneIdentity)
            Log.Warning("Backbone identity {Found} differs from the adapter's {Expected}", vit.Identity, manifest.BackboneIdentity);
        var task = job.LoadTask();
        using var method = JobFactory.CreateMethod(entry, vit, task.NumClasses, options, job.Run.Seed);
        RunDirectory.ApplyAdapter(tensors, method, Trainables.Of(method, vit), adapterPath);
        foreach (var t in tensors.Values) t.Dispose();

        using var display = new ProgressDisplay(Log.Logger, entry.Name);
        var test = job.Loader(task.Test, vit.Spec, 256, training: false);
        var result = new Evaluator(vit, method).Evaluate(test, "test", progress: display, cancellationToken: cancellationToken);
        Console.WriteLine($"{entry.Name}: test top-1 {result.Top1:P2} on {result.Images} images ({adapterPath})");
        return Task.FromResult(ExitCodes.Success);
    }

    private string DefaultAdapter(JobFactory job)
    {
        var (entry, options, recipe) = job.ResolveMethod();
        return Path.Combine(job.RunDirectory(entry, options, recipe), "adapter.safetensors");
    }
}
