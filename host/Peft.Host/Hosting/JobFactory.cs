using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;
using Peft.Data;
using Peft.Host.Plugins;
using Peft.Training;
using Peft.Training.Data;
using Peft.Vision;
using Peft.Vision.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Host.Hosting;

/// <summary>The splits of one downstream task.</summary>
public sealed record TaskData(IImageDataset Train, IImageDataset? Val, IImageDataset Test, int NumClasses);

/// <summary>Builds what a run needs from validated configuration: backbone, data, method and trainer.</summary>
public sealed class JobFactory(IConfiguration configuration, MethodCatalog methods)
{
    public RunOptions Run { get; } = HyperParameters.Load<RunOptions>(configuration).GetValueOrThrow();
    public BackboneOptions Backbone { get; } = HyperParameters.Load<BackboneOptions>(configuration).GetValueOrThrow();
    public DataOptions Data { get; } = HyperParameters.Load<DataOptions>(configuration).GetValueOrThrow();

    /// <summary>The ViT of Backbone, with its checkpoint loaded when one is named.</summary>
    public VisionTransformer CreateBackbone(Serilog.ILogger log)
    {
        var kind = Enum.Parse<BackboneKind>(Backbone.Kind, ignoreCase: true);
        torch.manual_seed((long)Run.Seed);
        var vit = new VisionTransformer(VitSpec.From(Backbone), kind);
        if (Backbone.Checkpoint is { Length: > 0 } path)
        {
            var loaded = VitCheckpoints.Load(vit, path, kind);
            log.Information("Backbone {Spec} loaded from {Path} ({Format}, identity {Identity})", vit.Spec, path, loaded.Format, vit.Identity);
        }
        else
            log.Warning("Backbone {Spec} has random weights (no Backbone:Checkpoint)", vit.Spec);
        vit.eval();
        return vit;
    }

    /// <summary>The downstream task's splits per Data (IDX, VTAB-1k list folder, FGVC json, ImageFolder).</summary>
    public TaskData LoadTask() => LoadTask(Data, Run.Seed);

    public static TaskData LoadTask(DataOptions data, int seed)
    {
        var decoder = new NetpbmDecoder(new SkiaImageDecoder(data.MaxImagePixels));
        IImageDataset train, test;
        IImageDataset? val = null;
        switch (data.Format)
        {
            case "idx":
                train = FashionMnist.Train(data.Root);
                test = FashionMnist.Test(data.Root);
                break;
            case "vtab":
                // Root is the task folder; VTAB-1k trains on train800val200 and tunes on train800 → val200 (§4.1).
                train = VtabDataset.LoadFolder(data.Root, data.ValSamples > 0 ? VtabSplit.Train800 : VtabSplit.Train800Val200, decoder);
                if (data.ValSamples > 0) val = VtabDataset.LoadFolder(data.Root, VtabSplit.Val200, decoder);
                test = VtabDataset.LoadFolder(data.Root, VtabSplit.Test, decoder);
                return new TaskData(train, val, test, train.ClassCount);
            case "fgvc":
                train = FgvcDataset.Load(data.Root, "train", decoder);
                val = FgvcDataset.Load(data.Root, "val", decoder);
                test = FgvcDataset.Load(data.Root, "test", decoder);
                return new TaskData(train, val, test, train.ClassCount);
            case "imagefolder":
                train = ImageFolderDataset.Load(Path.Combine(data.Root, "train"), decoder);
                var valDir = Path.Combine(data.Root, "val");
                if (Directory.Exists(valDir)) val = ImageFolderDataset.Load(valDir, decoder);
                test = ImageFolderDataset.Load(Path.Combine(data.Root, "test"), decoder);
                return new TaskData(train, val, test, train.ClassCount);
            default:
                throw new ArgumentException($"unknown Data:Format '{data.Format}'");
        }

        if (data.Classes.Count > 0)
        {
            train = train.WithClasses([.. data.Classes]);
            test = test.WithClasses([.. data.Classes]);
        }
        if (data.TrainSamples > 0 || data.ValSamples > 0)
        {
            var wanted = data.TrainSamples > 0 ? data.TrainSamples + data.ValSamples : train.Count;
            var pool = train.StratifiedSample(Math.Min(wanted, train.Count), seed);
            (train, val) = SplitValidation(pool, data.ValSamples, seed);
        }
        return new TaskData(train, val, test, train.ClassCount);
    }

    /// <summary>Holds out <paramref name="valCount"/> samples, stratified, deterministic per seed.</summary>
    private static (IImageDataset Train, IImageDataset? Val) SplitValidation(IImageDataset pool, int valCount, int seed)
    {
        if (valCount <= 0) return (pool, null);
        var val = pool.StratifiedSample(valCount, seed + 1);
        var held = Enumerable.Range(0, val.Count).Select(val.SourceName).ToHashSet(StringComparer.Ordinal);
        var trainIndices = Enumerable.Range(0, pool.Count).Where(i => !held.Contains(pool.SourceName(i))).ToArray();
        return (pool.Subset(trainIndices), val);
    }

    /// <summary>Decode → channels → resize → (augment) → normalise, for the backbone's input.</summary>
    public static TransformPipeline Pipeline(DataOptions data, VitSpec spec, bool training)
    {
        var steps = new List<IImageTransform> { new ToChannels(spec.Channels), new Resize(spec.ImageSize, spec.ImageSize) };
        if (training && data.Augment) steps.Add(new RandomHorizontalFlip());
        steps.Add(new Normalize(data.Mean.Select(v => (float)v).ToList(), data.Std.Select(v => (float)v).ToList()));
        return new TransformPipeline(steps);
    }

    public static IBatchSource Loader(IImageDataset dataset, DataOptions data, VitSpec spec, int batchSize, bool training, int seed,
        int samplesPerClass = 0) =>
        new LoaderBatchSource(new DataLoader(dataset, Pipeline(data, spec, training), new DataLoaderOptions
        {
            BatchSize = batchSize, Shuffle = training, Seed = seed, Workers = data.Workers, PrefetchBatches = data.Prefetch,
            SkipBadImages = data.SkipBadImages, SamplesPerClass = samplesPerClass,
        }));

    /// <summary>The method named by Method:Name, its bound options, and the recipe: its default with the Trainer section on top.</summary>
    public (MethodEntry Entry, IHyperParameters Options, TrainerOptions Recipe) ResolveMethod()
    {
        var name = configuration["Method:Name"] ?? throw new InvalidOperationException("Method:Name is not set");
        var entry = methods.Methods[name];
        var options = entry.Factory.Options.Load(configuration, "Method:Options").GetValueOrThrow();
        var issues = new List<ConfigIssue>();
        var recipe = TrainerOptions.Bind(configuration.GetSection("Trainer"), "Trainer", issues, basis: entry.Factory.DefaultRecipe(options));
        recipe.Validate("Trainer", issues);
        if (issues.Count > 0) throw new ConfigurationException(issues);
        return (entry, options, recipe);
    }

    /// <summary>Run:OutputDir/Run:Name, or the method id and a hash of everything that defines the run.</summary>
    public string RunDirectory(string methodId, IHyperParameters options, TrainerOptions recipe)
    {
        if (Run.Name is { Length: > 0 } name) return Path.GetFullPath(Path.Combine(Run.OutputDir, name));
        var identity = string.Join("|", ContentHashing.CanonicalText(Backbone), ContentHashing.CanonicalText(Data),
            ContentHashing.CanonicalText(recipe), ContentHashing.CanonicalText(options), Run.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return Path.GetFullPath(Path.Combine(Run.OutputDir, $"{methodId}-{ContentHashing.HashText(identity)[..8]}"));
    }

    /// <summary>The resolved configuration, as config.json records it.</summary>
    public static string ResolvedJson(IConfiguration configuration)
    {
        var values = configuration.AsEnumerable().Where(kv => kv.Value is not null && !kv.Key.StartsWith("Serilog", StringComparison.Ordinal))
            .OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => kv.Value);
        return JsonSerializer.Serialize(values, new JsonSerializerOptions { WriteIndented = true });
    }
}
