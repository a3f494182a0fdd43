using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;
using Peft.Data;
using Peft.Engine;
using Peft.Host.Plugins;
using Peft.Training;
using Peft.Training.Data;
using Peft.Vision;
using Peft.Vision.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Host.Hosting;

/// <summary>The splits of one downstream task.</summary>
public sealed record TaskData(IImageDataset Train, IImageDataset? Val, IImageDataset Test, int NumClasses)
{
    /// <summary>
    /// The identity of the data a run sees: per split, its samples (source and label, in order) and the size and time
    /// of every file they come from. A file replaced under the same name is another dataset.
    /// </summary>
    public string Identity()
    {
        var hash = new System.Text.StringBuilder();
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, split) in new[] { ("train", Train), ("val", Val), ("test", Test) })
        {
            if (split is null) continue;
            hash.Append(name).Append(':').Append(split.Count).Append(':').AppendJoin(',', split.ClassNames).Append('\n');
            for (var i = 0; i < split.Count; i++)
            {
                var source = split.SourceName(i);
                hash.Append(source).Append(' ').Append(split.Label(i)).Append('\n');
                // IDX samples are "file#index": one file for them all.
                var file = source;
                var cut = source.LastIndexOf('#');
                if (cut > 0 && (files.ContainsKey(source[..cut]) || !File.Exists(source))) file = source[..cut];
                if (!files.ContainsKey(file))
                    files[file] = new FileInfo(file) is { Exists: true } info ? $"{info.Length} {info.LastWriteTimeUtc.Ticks}" : "absent";
            }
        }
        foreach (var (file, stamp) in files.OrderBy(f => f.Key, StringComparer.Ordinal)) hash.Append(file).Append(' ').Append(stamp).Append('\n');
        return Peft.Configuration.ContentHashing.HashText(hash.ToString());
    }
}

/// <summary>Builds what a run needs from validated configuration: backbone, data, method and trainer.</summary>
public sealed class JobFactory(IConfiguration configuration, MethodCatalog methods)
{
    public RunOptions Run { get; } = HyperParameters.Load<RunOptions>(configuration).GetValueOrThrow();
    public BackboneOptions Backbone { get; } = HyperParameters.Load<BackboneOptions>(configuration).GetValueOrThrow();
    public DataOptions Data { get; } = HyperParameters.Load<DataOptions>(configuration).GetValueOrThrow();

    /// <summary>Run:Device resolved (auto: the first CUDA device if there is one); validated on start, so never a problem here.</summary>
    public Device Device => _device ??= TorchEngine.ResolveDevice(Run.Device).Device
        ?? throw new InvalidOperationException($"Run:Device '{Run.Device}' is not available");
    private Device? _device;

    /// <summary>
    /// A method attached to <paramref name="backbone"/>, with its module on the backbone's device: plugins create their
    /// tensors without naming a device, and the host moves them once, before any optimizer holds them.
    /// </summary>
    public static IPeftMethod CreateMethod(MethodEntry entry, IVisionBackbone backbone, int classes, IHyperParameters options, int seed)
    {
        var method = entry.Factory.Create(new MethodContext(backbone, classes, options, seed));
        if (backbone.Device.type != DeviceType.CPU) method.Module.to(backbone.Device);
        return method;
    }

    /// <summary>The ViT of Backbone, with its checkpoint loaded when one is named, on Run:Device.</summary>
    public VisionTransformer CreateBackbone(Serilog.ILogger log)
    {
        var kind = Backbone.Kind;
        if (Backbone.Checkpoint is { Length: > 0 } file && !File.Exists(file))
            throw Invalid("Backbone:Checkpoint", Directory.Exists(file)
                ? $"Backbone:Checkpoint '{file}' is a folder, not a checkpoint file"
                : $"Backbone:Checkpoint '{file}' does not exist (`peft pretrain` writes Pretrain:Output; empty: random weights)");
        torch.manual_seed((long)Run.Seed);
        var vit = new VisionTransformer(VitSpec.From(Backbone), kind);
        if (Backbone.Checkpoint is { Length: > 0 } path)
        {
            var loaded = VitCheckpoints.Load(vit, path, kind, Backbone.MaxCheckpointBytes);
            log.Information("Backbone {Spec} loaded from {Path} ({Format}, identity {Identity})", vit.Spec, path, loaded.Format, vit.Identity);
        }
        else
            log.Warning("Backbone {Spec} has random weights (no Backbone:Checkpoint)", vit.Spec);
        vit.eval();
        if (Run.Precision != Precision.Fp32)
        {
            vit.ToPrecision(MixedPrecision.TypeOf(Run.Precision));
            log.Information("Backbone computes in {Precision}; LayerNorms, the residual stream and every trainable tensor stay fp32", Run.Precision);
        }
        if (Device.type != DeviceType.CPU)
        {
            vit.to(Device);
            log.Information("Backbone on {Device}{Auto}", Device, Run.Device == "auto" ? " (Run:Device=auto)" : "");
        }
        else if (Run.Device == "auto")
            log.Information("Run:Device=auto found no CUDA device: training on the CPU");
        return vit;
    }

    /// <summary>The downstream task's splits per Data (IDX, VTAB-1k list folder, FGVC json, ImageFolder).</summary>
    public TaskData LoadTask() => LoadTask(Data, Run.Seed, Backbone.ImageSize);

    /// <summary>
    /// The splits of <paramref name="data"/>, with Data:Classes, Data:TrainSamples and Data:ValSamples applied whatever the
    /// format. Settings that the data shows to be wrong (a Data:Root that is not a dataset of Data:Format, a class it does
    /// not have, more samples than a split holds) are configuration errors naming the key.
    /// </summary>
    /// <param name="imageSize">The side the pipeline resizes to: larger images are shrunk towards it while they decode.</param>
    /// <exception cref="ConfigurationException">A setting the data contradicts.</exception>
    public static TaskData LoadTask(DataOptions data, int seed, int imageSize)
    {
        if (!Directory.Exists(data.Root))
            throw Invalid("Data:Root", File.Exists(data.Root)
                ? $"Data:Root '{data.Root}' is a file; it must be the dataset's folder ({Layout(data.Format)})"
                : $"Data:Root '{data.Root}' does not exist ({Layout(data.Format)})");
        var decoder = new NetpbmDecoder(new SkiaImageDecoder(new ImageLimits(data.MaxFileBytes, data.MaxImagePixels, imageSize)));
        IImageDataset train, test;
        IImageDataset? val = null;
        try
        {
            switch (data.Format)
            {
                case DataFormat.Idx:
                    train = FashionMnist.Train(data.Root, data.MaxFileBytes);
                    test = FashionMnist.Test(data.Root, data.MaxFileBytes);
                    break;
                case DataFormat.Vtab:
                    // Root is the task folder; VTAB-1k trains on train800val200 and tunes on train800 → val200 (§4.1).
                    train = VtabDataset.LoadFolder(data.Root, data.ValSamples > 0 ? VtabSplit.Train800 : VtabSplit.Train800Val200, decoder);
                    if (data.ValSamples > 0) val = VtabDataset.LoadFolder(data.Root, VtabSplit.Val200, decoder);
                    test = VtabDataset.LoadFolder(data.Root, VtabSplit.Test, decoder);
                    break;
                case DataFormat.Fgvc:
                    train = FgvcDataset.Load(data.Root, "train", decoder);
                    val = FgvcDataset.Load(data.Root, "val", decoder);
                    test = FgvcDataset.Load(data.Root, "test", decoder);
                    break;
                case DataFormat.ImageFolder:
                    train = ImageFolderDataset.Load(Path.Combine(data.Root, "train"), decoder);
                    var valDir = Path.Combine(data.Root, "val");
                    if (Directory.Exists(valDir)) val = ImageFolderDataset.Load(valDir, decoder);
                    test = ImageFolderDataset.Load(Path.Combine(data.Root, "test"), decoder);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(data), data.Format, "unknown Data:Format");
            }
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw Invalid("Data:Root", $"Data:Root '{data.Root}' is not a {data.Format.ToString().ToLowerInvariant()} dataset ({Layout(data.Format)}): {e.Message}");
        }

        if (data.Classes.Count > 0)
        {
            var issues = new List<ConfigIssue>();
            for (var i = 0; i < data.Classes.Count; i++)
            {
                var c = data.Classes[i];
                if (c < 0 || c >= train.ClassCount)
                    issues.Add(ConfigIssue.Custom($"Data:Classes:{i}", $"Data:Classes:{i} is {c}, but {train.Name} has {train.ClassCount} classes (0 to {train.ClassCount - 1})"));
                else if (data.Classes.IndexOf(c) < i)
                    issues.Add(ConfigIssue.Custom($"Data:Classes:{i}", $"Data:Classes:{i} repeats class {c}"));
            }
            if (issues.Count > 0) throw new ConfigurationException(issues);
            train = train.WithClasses([.. data.Classes]);
            val = val?.WithClasses([.. data.Classes]);
            test = test.WithClasses([.. data.Classes]);
        }

        // Validation images come from the format's own split when it has one, else they are held out of the training split.
        var heldOut = val is null ? data.ValSamples : 0;
        if (val is not null && data.ValSamples > 0 && data.ValSamples != val.Count)
        {
            if (data.ValSamples > val.Count)
                throw Invalid("Data:ValSamples", $"Data:ValSamples is {data.ValSamples}, but the validation split {val.Name} holds {val.Count} images");
            val = val.StratifiedSample(data.ValSamples, seed + 1);
        }
        if (data.TrainSamples > 0 || heldOut > 0)
        {
            var wanted = data.TrainSamples > 0 ? data.TrainSamples + heldOut : train.Count;
            if (wanted > train.Count)
                throw Invalid(data.TrainSamples > 0 ? "Data:TrainSamples" : "Data:ValSamples",
                    $"Data:TrainSamples ({data.TrainSamples}) and the Data:ValSamples held out of training ({heldOut}) ask for {wanted} images, " +
                    $"but the training split {train.Name} holds {train.Count}");
            var pool = train.StratifiedSample(wanted, seed);
            IImageDataset? held;
            (train, held) = SplitValidation(pool, heldOut, seed);
            val ??= held;
        }
        foreach (var (split, set) in new[] { ("training", train), ("test", test) })
            if (set.Count == 0)
                throw Invalid(data.Classes.Count > 0 ? "Data:Classes" : "Data:Root", $"the {split} split {set.Name} has no images");
        return new TaskData(train, val, test, train.ClassCount);
    }

    private static string Layout(DataFormat format) => format switch
    {
        DataFormat.Idx => "Data:Format=idx expects Fashion-MNIST's train-/t10k-images-idx3-ubyte(.gz) and -labels-idx1-ubyte(.gz) files",
        DataFormat.Vtab => "Data:Format=vtab expects a VTAB-1k task folder with train800.txt, val200.txt, train800val200.txt and test.txt",
        DataFormat.Fgvc => "Data:Format=fgvc expects train.json, val.json and test.json",
        _ => "Data:Format=imagefolder expects train/ and test/ (and optionally val/) folders of class folders",
    };

    /// <summary>A setting that the data, the files or the run directory show to be wrong (exit 2, naming the key).</summary>
    internal static ConfigurationException Invalid(string key, string message) => new([ConfigIssue.Custom(key, message)]);

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

    /// <summary>The smallest k ≥ 2 dividing the batch with B/k ≤ C classes per batch.</summary>
    public static int SamplesPerClass(int batch, int classes)
    {
        for (var k = 2; k < batch; k++)
            if (batch % k == 0 && batch / k <= classes) return k;
        return batch;
    }

    /// <summary>
    /// A prefetching loader of <paramref name="dataset"/> for this run: Data's pipeline (or <paramref name="data"/>'s), Run:Seed,
    /// batches pinned when the run is on a CUDA device.
    /// </summary>
    public IBatchSource Loader(IImageDataset dataset, VitSpec spec, int batchSize, bool training, int samplesPerClass = 0, DataOptions? data = null) =>
        Loader(dataset, data ?? Data, spec, batchSize, training, Run.Seed, samplesPerClass, pinMemory: Device.type == DeviceType.CUDA);

    public static IBatchSource Loader(IImageDataset dataset, DataOptions data, VitSpec spec, int batchSize, bool training, int seed,
        int samplesPerClass = 0, bool pinMemory = false) =>
        new LoaderBatchSource(new DataLoader(dataset, Pipeline(data, spec, training), new DataLoaderOptions
        {
            BatchSize = batchSize, Shuffle = training, Seed = seed, Workers = data.Workers, PrefetchBatches = data.Prefetch,
            SkipBadImages = data.SkipBadImages, SamplesPerClass = samplesPerClass, PinMemory = pinMemory,
        }));

    /// <summary>The method named by Method:Name, its bound options, and the recipe: its default with the Trainer section on top.</summary>
    public (MethodEntry Entry, IHyperParameters Options, TrainerOptions Recipe) ResolveMethod()
    {
        var name = configuration["Method:Name"] ?? throw new InvalidOperationException("Method:Name is not set");
        var entry = methods.Methods[name];
        var options = entry.Factory.Options.Load(configuration, "Method:Options").GetValueOrThrow();
        var issues = new List<ConfigIssue>();
        var recipe = TrainerOptions.Bind(configuration.GetSection("Trainer"), "Trainer", issues, basis: entry.Factory.DefaultRecipe());
        recipe.Validate("Trainer", issues);
        if (issues.Count > 0) throw new ConfigurationException(issues);
        if (recipe.WarmupEpochs >= recipe.Epochs)
            Serilog.Log.Warning("Trainer:WarmupEpochs ({Warmup}) is not below Trainer:Epochs ({Epochs}): every epoch is in the warm-up, " +
                                "so the learning rate never reaches {Method}'s rate; lower Trainer:WarmupEpochs", recipe.WarmupEpochs, recipe.Epochs, name);
        return (entry, options, recipe);
    }

    /// <summary>
    /// Run:OutputDir/Run:Name (validated to stay inside Run:OutputDir), or the method id and a hash of everything that
    /// defines the run, the method's build included: a plugin rebuilt from other code trains afresh instead of reusing
    /// the finished run of its old build.
    /// </summary>
    public string RunDirectory(MethodEntry method, IHyperParameters options, TrainerOptions recipe)
    {
        if (Run.Name is { Length: > 0 } name)
            return Run.NamedRunDirectory(name) ?? throw Invalid("Run:Name", $"Run:Name '{name}' leaves Run:OutputDir");
        var identity = string.Join("|", ContentHashing.CanonicalText(Backbone), ContentHashing.CanonicalText(Data),
            ContentHashing.CanonicalText(recipe), ContentHashing.CanonicalText(options), Run.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
            method.Build.ContentHash);
        return Path.GetFullPath(Path.Combine(Run.OutputDir, $"{method.Name}-{ContentHashing.HashText(identity)[..8]}"));
    }

    /// <summary>
    /// What the host knows decides a run's result, beyond what the trainer is given (<see cref="TrainerSetup.Identity"/>):
    /// every bound option of Run, Backbone and Data except those that only say where the run is written, whether it
    /// resumes and how fast it goes; the dataset's identity; the build of the method's assembly.
    /// </summary>
    public RunIdentity Identity(MethodEntry entry, TaskData task) => new RunIdentity()
        .With("Run", Run, nameof(RunOptions.OutputDir), nameof(RunOptions.Name), nameof(RunOptions.Resume), nameof(RunOptions.Threads))
        .With("Backbone", Backbone)
        .With("Data", Data, nameof(DataOptions.Workers), nameof(DataOptions.Prefetch))
        .With("Data:Identity", task.Identity())
        .With("Method:Build", RunIdentity.BuildOf(entry.Factory.GetType().Assembly));

    /// <summary>The resolved configuration, as config.json records it.</summary>
    public static string ResolvedJson(IConfiguration configuration)
    {
        var values = configuration.AsEnumerable().Where(kv => kv.Value is not null && !kv.Key.StartsWith("Serilog", StringComparison.Ordinal))
            .OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => kv.Value);
        return JsonSerializer.Serialize(values, new JsonSerializerOptions { WriteIndented = true });
    }
}
