using System.Text.Json;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Training.Baselines;
using Peft.Training.Data;
using Peft.Vision;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Training.Tests;

public sealed class TrainerTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("peft-trainer-");

    public void Dispose() => _dir.Delete(recursive: true);

    private static TrainerOptions Recipe(int epochs = 6, OptimizerKind optimizer = OptimizerKind.Sgd, double lr = 0.4) => new()
    {
        Epochs = epochs, BatchSize = 32, Optimizer = optimizer, BaseLr = lr, WarmupEpochs = 1, ScaleLrByBatch = true, WeightDecay = 1e-4, EvalEvery = 2,
        CheckpointEvery = 1,
    };

    private TrainerSetup Setup(BaselineKind kind, VisionTransformer vit, TrainerOptions recipe, string run, IBatchSource train,
        IBatchSource? test = null)
    {
        manual_seed(5);
        var options = new BaselineOptions();
        var method = new BaselineMethod(kind, vit, 4, options);
        return new TrainerSetup
        {
            Backbone = vit, Method = method, MethodId = kind.ToString().ToLowerInvariant(), MethodOptions = options, Recipe = recipe,
            Train = train, Val = test, Test = test, RunDirectory = Path.Combine(_dir.FullName, run),
            ConfigJson = "{}",
        };
    }

    public static TheoryData<BaselineKind> Baselines => new() { BaselineKind.Linear, BaselineKind.Bias, BaselineKind.Full };

    [Theory]
    [MemberData(nameof(Baselines))]
    public void Baselines_learn_a_separable_task_well_above_chance(BaselineKind kind)
    {
        using var vit = TinyTask.Backbone();
        using var train = TinyTask.Source(256, 11, 32, shuffle: true);
        using var test = TinyTask.Source(128, 12, 64, shuffle: false);
        // Tuning backbone tensors wants a smaller step than a head alone (as in VPT's sweeps).
        var recipe = kind == BaselineKind.Linear ? Recipe() : Recipe(epochs: 8, lr: 0.1) with { ClipGradNorm = 1 };
        var result = new Trainer(Setup(kind, vit, recipe, kind.ToString(), train, test)).Run();
        var lines = string.Join(" | ", new RunDirectory(Path.Combine(_dir.FullName, kind.ToString())).ReadMetrics().Select(m => $"{m.Epoch}:{m.Loss:F3}/{m.TrainAccuracy:F2}/lr{m.Lr:F4}"));
        Assert.True(result.LastEpoch!.Test > 0.9, $"{kind}: test accuracy {result.LastEpoch.Test} (chance 0.25) {lines}");
    }

    [Theory]
    [MemberData(nameof(Baselines))]
    public void Each_baseline_updates_exactly_the_backbone_tensors_it_tunes(BaselineKind kind)
    {
        // Linear probing leaves the backbone as it was, bias tuning moves every bias and nothing else, full fine-tuning
        // moves every tensor: a baseline that trained only its head would still learn the separable task above.
        using var vit = TinyTask.Backbone();
        using var train = TinyTask.Source(64, 11, 32, shuffle: true);
        var before = vit.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());
        using (var trainer = new Trainer(Setup(kind, vit, Recipe(epochs: 1, lr: 0.1) with { WarmupEpochs = 0 }, $"moves-{kind}", train)))
            trainer.Run();
        var moved = vit.named_parameters().Where(p => !p.parameter.detach().Equals(before[p.name])).Select(p => p.name).ToHashSet();
        var expected = vit.named_parameters().Select(p => p.name)
            .Where(n => kind == BaselineKind.Full || (kind == BaselineKind.Bias && n.EndsWith(".bias", StringComparison.Ordinal))).ToHashSet();
        Assert.True(expected.SetEquals(moved),
            $"{kind}: moved but should not [{string.Join(", ", moved.Except(expected))}]; should move but did not [{string.Join(", ", expected.Except(moved))}]");
        foreach (var t in before.Values) t.Dispose();
    }

    [Fact]
    public void Linear_probing_on_cached_features_trains_the_same_head_as_on_images()
    {
        using var vit = TinyTask.Backbone();
        using var train = TinyTask.Source(256, 11, 32, shuffle: true);
        using var test = TinyTask.Source(128, 12, 64, shuffle: false);
        var heads = new List<float[]>();
        var results = new List<TrainingResult>();
        foreach (var cache in new[] { true, false })
        {
            var setup = Setup(BaselineKind.Linear, vit, Recipe() with { CacheFeatures = cache }, $"cache-{cache}", train, test);
            results.Add(new Trainer(setup).Run());
            heads.Add(setup.Method.Module.parameters().SelectMany(p => p.detach().contiguous().data<float>().ToArray()).ToArray());
        }
        Assert.True(results[0].CachedFeatures);
        Assert.False(results[1].CachedFeatures);
        Assert.Equal(results[1].LastEpoch!.Test, results[0].LastEpoch!.Test);
        Assert.Equal(results[1].LastEpoch!.Loss, results[0].LastEpoch!.Loss, 1e-5);
        Assert.Equal(heads[1].Length, heads[0].Length);
        for (var i = 0; i < heads[0].Length; i++) Assert.Equal(heads[1][i], heads[0][i], 1e-5f);
        // The run learned something, so equal heads are not two untouched initialisations.
        Assert.True(results[0].LastEpoch!.Test > 0.9, $"test {results[0].LastEpoch!.Test}");
    }

    [Fact]
    public void Trainable_counts_follow_the_closed_forms()
    {
        using var vit = TinyTask.Backbone();
        using var train = TinyTask.Source(32, 1, 32, shuffle: false);
        var (d, depth, hidden, classes) = (32L, 2L, 128L, 4L);
        var head = (d + 1) * classes;
        // Biases of a ViT: patch conv D; per block norm1 D, qkv 3D, proj D, norm2 D, fc1 hidden, fc2 D; final norm D.
        var biases = d + depth * (d + 3 * d + d + d + hidden + d) + d;
        var total = vit.parameters().Sum(p => p.numel());
        Assert.Equal(head, new Trainer(Setup(BaselineKind.Linear, vit, Recipe(), "l", train)).TrainableParameters.Sum(p => p.Parameter.numel()));
        Assert.Equal(head + biases, new Trainer(Setup(BaselineKind.Bias, vit, Recipe(), "b", train)).TrainableParameters.Sum(p => p.Parameter.numel()));
        Assert.Equal(head + total, new Trainer(Setup(BaselineKind.Full, vit, Recipe(), "f", train)).TrainableParameters.Sum(p => p.Parameter.numel()));
    }

    [Fact]
    public void Vpt_schedule_starts_at_zero_and_peaks_at_base_lr_times_batch_over_256()
    {
        using var vit = TinyTask.Backbone();
        using var train = TinyTask.Source(64, 1, 32, shuffle: false);
        var recipe = Recipe(epochs: 5) with { WarmupEpochs = 2, BaseLr = 0.8, EvalEvery = 100 };
        var trainer = new Trainer(Setup(BaselineKind.Linear, vit, recipe, "lr", train));
        trainer.Run();
        var lrs = new RunDirectory(Path.Combine(_dir.FullName, "lr")).ReadMetrics().Select(m => m.Lr).ToArray();
        var peak = 0.8 * 32 / 256; // 0.1
        Assert.Equal(0.0, lrs[0], 12);                                      // epoch 0 trains at lr 0
        Assert.Equal(peak / 2, lrs[1], 12);                                 // half-way through warm-up
        Assert.Equal(peak, lrs[2], 12);                                     // end of warm-up
        Assert.Equal(peak * 0.5 * (1 + Math.Cos(Math.PI / 3)), lrs[3], 12); // cosine, 1/3 of the decay
    }

    [Fact]
    public void Vpt_groups_decay_everything_but_the_head_bias()
    {
        using var vit = TinyTask.Backbone();
        using var method = new BaselineMethod(BaselineKind.Bias, vit, 4, new BaselineOptions());
        var groups = method.ParameterGroups(Recipe() with { WeightDecay = 0.01 }, vit);
        var noDecay = Assert.Single(groups, g => g.WeightDecay == 0);
        Assert.Equal(["head.fc.bias"], noDecay.Parameters.Select(p => p.Name));
        Assert.Contains(groups, g => g.WeightDecay == 0.01 && g.Parameters.Any(p => p.Name == "backbone.blocks.0.attn.qkv.bias"));
        Assert.Equal(-Math.Log(99), method.HeadModule.fc.bias!.data<float>().ToArray()[0], 5);
    }

    /// <summary>A method whose head is not called "head": the weight-decay groups find it by its role.</summary>
    private sealed class RenamedHeadMethod : nn.Module, IPeftMethod
    {
#pragma warning disable IDE1006 // a key name, on purpose not "head"
        public readonly ClassifierHead classifier;
        public readonly Parameter prompts = new(zeros(1, 2, TinyTask.Spec.Dim));
#pragma warning restore IDE1006

        public RenamedHeadMethod() : base(nameof(RenamedHeadMethod))
        {
            classifier = new ClassifierHead(TinyTask.Spec.Dim, 4);
            RegisterComponents();
        }

        public nn.Module Module => this;
        public Tensor Head(Tensor pooled) => classifier.call(pooled);
        public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, Abstractions.Backbone.IVisionBackbone backbone) =>
            Trainables.VptGroups(this, backbone, recipe);
    }

    [Fact]
    public void Vpt_groups_find_the_head_by_its_role_whatever_its_name()
    {
        using var vit = TinyTask.Backbone();
        using var method = new RenamedHeadMethod();
        var groups = method.ParameterGroups(Recipe() with { WeightDecay = 0.01, HeadWeightDecay = 3 }, vit);
        Assert.Equal(["classifier.fc.bias"], Assert.Single(groups, g => g.Name == "head_bias").Parameters.Select(p => p.Name));
        Assert.Equal(0.0, groups.Single(g => g.Name == "head_bias").WeightDecay);
        Assert.Equal(["classifier.fc.weight"], Assert.Single(groups, g => g.WeightDecay == 3).Parameters.Select(p => p.Name));
        Assert.Equal(["prompts"], Assert.Single(groups, g => g.WeightDecay == 0.01).Parameters.Select(p => p.Name));
    }

    [Fact]
    public void A_method_without_a_classifier_head_module_gets_no_silent_weight_decay_on_its_head()
    {
        using var vit = TinyTask.Backbone();
        using var headless = new HeadlessMethod();
        var error = Assert.Throws<InvalidOperationException>(() => Trainables.VptGroups(headless, vit, Recipe()));
        Assert.Contains("holds 0 classifier heads", error.Message);
    }

    private sealed class HeadlessMethod : IPeftMethod
    {
        private sealed class Holder() : nn.Module(nameof(Holder));
        public nn.Module Module { get; } = new Holder();
        public Tensor Head(Tensor pooled) => pooled;
        public IReadOnlyList<ParameterGroup> ParameterGroups(TrainerOptions recipe, Abstractions.Backbone.IVisionBackbone backbone) => [];
        public void Dispose() => Module.Dispose();
    }

    // Linear probing runs on cached features (the cached source replays the loader's sampler), bias tuning on images.
    [Theory]
    [InlineData(BaselineKind.Bias)]
    [InlineData(BaselineKind.Linear)]
    public void An_interrupted_run_resumes_to_the_same_weights_and_metrics(BaselineKind kind)
    {
        var recipe = Recipe(epochs: 4) with { EvalEvery = 1 };
        using var train = TinyTask.Source(192, 21, 32, shuffle: true);
        using var test = TinyTask.Source(64, 22, 64, shuffle: false);

        using var vitA = TinyTask.Backbone();
        var a = new Trainer(Setup(kind, vitA, recipe, "a", train, test));
        var resultA = a.Run();
        Assert.Equal(kind == BaselineKind.Linear, resultA.CachedFeatures);
        var weightsA = a.TrainableParameters.Select(p => p.Parameter.data<float>().ToArray()).ToList();

        // Interrupt the second run after 9 steps (mid-epoch 1), then resume it with a new trainer.
        using var vitB = TinyTask.Backbone();
        var setupB = Setup(kind, vitB, recipe, "b", train, test);
        using var cancel = new CancellationTokenSource();
        var steps = 0;
        var progress = new SyncProgress(p => { if (p.Phase == "train" && ++steps == 9) cancel.Cancel(); });
        Assert.Throws<OperationCanceledException>(() => new Trainer(setupB).Run(progress, cancel.Token));
        Assert.True(File.Exists(Path.Combine(setupB.RunDirectory, "checkpoint", "state.safetensors")));

        using var vitC = TinyTask.Backbone();
        var c = new Trainer(Setup(kind, vitC, recipe, "b", train, test));
        var resultC = c.Run();
        var weightsC = c.TrainableParameters.Select(p => p.Parameter.data<float>().ToArray()).ToList();

        for (var i = 0; i < weightsA.Count; i++) Assert.Equal(weightsA[i], weightsC[i]);

        // Running a finished run again trains nothing and reports the stored results.
        using var vitD = TinyTask.Backbone();
        var d = new Trainer(Setup(kind, vitD, recipe, "b", train, test));
        var resultD = d.Run();
        Assert.True(d.AlreadyComplete);
        Assert.Equal(resultC.LastEpoch, resultD.LastEpoch);
        Assert.Equal(resultC.TrainImagesPerSecond, resultD.TrainImagesPerSecond);
        Assert.Equal(weightsC[0], d.TrainableParameters[0].Parameter.data<float>().ToArray());
        Assert.Equal(resultA.LastEpoch!.Test, resultC.LastEpoch!.Test);
        Assert.Equal(resultA.LastEpoch.Loss, resultC.LastEpoch.Loss);
        var metricsA = new RunDirectory(Path.Combine(_dir.FullName, "a")).ReadMetrics();
        var metricsC = new RunDirectory(setupB.RunDirectory).ReadMetrics();
        Assert.Equal(metricsA.Select(m => (m.Epoch, m.Loss, m.Val)), metricsC.Select(m => (m.Epoch, m.Loss, m.Val)));
    }

    [Fact]
    public void A_run_directory_holding_a_run_with_other_settings_is_refused_naming_every_differing_key_unless_started_over()
    {
        using var train = TinyTask.Source(64, 1, 32, shuffle: false);
        using var vit = TinyTask.Backbone();
        var first = new Trainer(Setup(BaselineKind.Linear, vit, Recipe(epochs: 1), "r", train)).Run();
        var run = new RunDirectory(Path.Combine(_dir.FullName, "r"));
        var results = File.ReadAllText(run.ResultsFile);

        // Other pretrained weights and one more epoch: neither resumed nor reported as this configuration's result.
        using var other = TinyTask.Backbone(seed: 99);
        var e = Assert.Throws<Peft.Configuration.ConfigurationException>(() => new Trainer(Setup(BaselineKind.Linear, other, Recipe(epochs: 2), "r", train)).Run());
        Assert.Equal(["Backbone:Identity", "Trainer:Epochs", "Run:Name"], e.Issues.Select(i => i.Path));
        Assert.Contains("Trainer:Epochs: 1 in the run directory, 2 now", e.Message);
        Assert.Contains("Run:Resume=false", e.Message);

        // Other method options, same everything else.
        using var same = TinyTask.Backbone();
        var setup = Setup(BaselineKind.Linear, same, Recipe(epochs: 1), "r", train);
        var changed = new TrainerSetup
        {
            Backbone = setup.Backbone, Method = setup.Method, MethodId = setup.MethodId, MethodOptions = new BaselineOptions { HeadBias = 0 },
            Recipe = setup.Recipe, Train = setup.Train, RunDirectory = setup.RunDirectory, ConfigJson = "{\"changed\":1}",
        };
        e = Assert.Throws<Peft.Configuration.ConfigurationException>(() => new Trainer(changed).Run());
        Assert.Equal(["Method:Options:HeadBias", "Run:Name"], e.Issues.Select(i => i.Path));
        // The refused run wrote nothing: the directory still describes and reports the first run.
        Assert.Equal("{}", File.ReadAllText(run.ConfigFile));
        Assert.Equal(results, File.ReadAllText(run.ResultsFile));
        Assert.Equal(RunStatus.Finished, run.ReadStatus()!.Status);

        // Asking to start over discards the first run and trains the second.
        var restarted = new TrainerSetup
        {
            Backbone = setup.Backbone, Method = setup.Method, MethodId = setup.MethodId, MethodOptions = new BaselineOptions { HeadBias = 0 },
            Recipe = Recipe(epochs: 2), Train = setup.Train, RunDirectory = setup.RunDirectory, ConfigJson = "{\"changed\":1}",
            Resume = false,
        };
        var second = new Trainer(restarted).Run();
        Assert.Equal(2, second.Epochs);
        Assert.Equal([1, 2], run.ReadMetrics().Select(m => m.Epoch));
        Assert.Equal("{\"changed\":1}", File.ReadAllText(run.ConfigFile));
        Assert.Equal("0", run.ReadIdentity()!.Values["Method:Options:HeadBias"]);
        Assert.NotEqual(first.LastEpoch!.Loss, second.LastEpoch!.Loss);
    }

    [Fact]
    public void The_run_directory_holds_config_metrics_results_and_adapter()
    {
        using var vit = TinyTask.Backbone();
        using var train = TinyTask.Source(64, 3, 32, shuffle: true);
        using var test = TinyTask.Source(32, 4, 32, shuffle: false);
        var setup = Setup(BaselineKind.Linear, vit, Recipe(epochs: 2), "dir", train, test);
        var result = new Trainer(setup).Run();
        var run = new RunDirectory(setup.RunDirectory);
        Assert.Equal("{}", File.ReadAllText(run.ConfigFile));
        Assert.Equal([1, 2], run.ReadMetrics().Select(m => m.Epoch));
        using var json = JsonDocument.Parse(File.ReadAllText(run.ResultsFile));
        Assert.Equal(33 * 4, json.RootElement.GetProperty("trainableParameters").GetInt64());
        Assert.Equal(0, json.RootElement.GetProperty("trainableParametersWithoutHead").GetInt64());
        Assert.True(json.RootElement.GetProperty("peakResidentBytes").GetInt64() > 0);
        Assert.Equal(result.LastEpoch!.Test, json.RootElement.GetProperty("lastEpoch").GetProperty("test").GetDouble());

        var (manifest, tensors) = RunDirectory.ReadAdapter(run.AdapterFile);
        Assert.Equal("linear", manifest.Method);
        Assert.Equal(vit.Identity, manifest.BackboneIdentity);
        Assert.Equal(["method.head.fc.bias", "method.head.fc.weight"], tensors.Keys.Order());
        // Applying the adapter to a fresh method reproduces the trained head exactly.
        using var fresh = new BaselineMethod(BaselineKind.Linear, vit, 4, new BaselineOptions());
        RunDirectory.ApplyAdapter(tensors, fresh, Trainables.Of(fresh, vit), run.AdapterFile);
        Assert.Equal(((BaselineMethod)setup.Method).HeadModule.fc.weight.data<float>().ToArray(), fresh.HeadModule.fc.weight.data<float>().ToArray());
    }

    [Fact]
    public void Tensorboard_events_and_the_curves_svg_hold_every_epoch_of_metrics_jsonl()
    {
        using var vit = TinyTask.Backbone();
        using var train = TinyTask.Source(64, 3, 32, shuffle: true);
        using var test = TinyTask.Source(32, 4, 32, shuffle: false);
        var setup = Setup(BaselineKind.Bias, vit, Recipe(epochs: 4) with { EvalEvery = 2 }, "tb", train, test);
        new Trainer(setup).Run();
        var run = new RunDirectory(setup.RunDirectory);
        var metrics = run.ReadMetrics();
        Assert.Equal(RunStatus.Finished, run.ReadStatus()!.Status);

        var events = Directory.GetFiles(run.TensorBoardDirectory, "events.out.tfevents.*");
        var file = Assert.Single(events);
        var scalars = TensorBoardFile.Scalars(file);
        Assert.Equal(metrics.Select(m => ((long)m.Epoch, (float)m.Loss)), scalars["loss/cross_entropy"]);
        Assert.Equal(metrics.Select(m => ((long)m.Epoch, (float)m.TrainAccuracy)), scalars["top1/train"]);
        Assert.Equal(metrics.Select(m => ((long)m.Epoch, (float)m.Lr)), scalars["lr"]);
        Assert.Equal(metrics.Where(m => m.Test is not null).Select(m => ((long)m.Epoch, (float)m.Test!.Value)), scalars["top1/test"]);
        Assert.Equal([2, 4], scalars["top1/val"].Select(p => p.Step));
        Assert.Equal(4, scalars["images_per_second"].Count);
        Assert.False(scalars.ContainsKey("loss/auxiliary")); // bias tuning has no auxiliary loss

        var svg = System.Xml.Linq.XDocument.Load(run.CurvesFile);
        var paths = svg.Descendants().Where(e => e.Name.LocalName == "path").ToList();
        Assert.Equal(4, paths.Count); // cross entropy; train, val and test top-1
        Assert.All(paths, p => Assert.StartsWith("M", p.Attribute("d")!.Value));
    }

    [Fact]
    public void Truncating_metrics_for_a_resume_rewrites_the_tensorboard_events_and_curves_without_the_later_epochs()
    {
        var run = new RunDirectory(Path.Combine(_dir.FullName, "truncate"));
        run.Create("{}");
        foreach (var epoch in new[] { 1, 2, 3 })
            run.AppendMetrics(new EpochMetrics(epoch, epoch * 10, 0.1, 2.0 / epoch, 0.3 * epoch, 100));
        Assert.Equal([1, 2, 3], TensorBoardFile.Scalars(Assert.Single(Directory.GetFiles(run.TensorBoardDirectory)))["loss/cross_entropy"].Select(p => p.Step));

        // A resume from the checkpoint of epoch 2: epoch 3 was written after it and is not this run's.
        run.TruncateMetrics(2);
        Assert.Equal([1, 2], run.ReadMetrics().Select(m => m.Epoch));
        var scalars = TensorBoardFile.Scalars(Assert.Single(Directory.GetFiles(run.TensorBoardDirectory)));
        Assert.Equal([(1L, 2.0f), (2L, 1.0f)], scalars["loss/cross_entropy"]);
        // The legend shows the last epoch's value: epoch 2's train top-1, 0.6 (epoch 3's was 0.9).
        Assert.Contains(System.Xml.Linq.XDocument.Load(run.CurvesFile).Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value),
            text => text == "train 60 %");

        // Starting over keeps nothing.
        run.TruncateMetrics(0);
        Assert.Empty(run.ReadMetrics());
        Assert.False(Directory.Exists(run.TensorBoardDirectory) && Directory.GetFiles(run.TensorBoardDirectory).Length > 0);
        Assert.False(File.Exists(run.CurvesFile));
    }

    [Fact]
    public void A_non_finite_loss_stops_the_run_at_its_step_naming_epoch_step_and_term_and_keeps_the_last_good_checkpoint()
    {
        using var vit = TinyTask.Backbone();
        using var clean = TinyTask.Source(96, 1, 32, shuffle: false);
        var train = new PoisonedSource(clean, epoch: 1, batch: 1); // NaN images in epoch 2's second batch
        var setup = Setup(BaselineKind.Linear, vit, Recipe(epochs: 3) with { CacheFeatures = false }, "nan", train);
        var steps = 0;
        var e = Assert.Throws<NonFiniteLossException>(() => new Trainer(setup).Run(new SyncProgress(p => { if (p.Phase == "train") steps++; })));
        Assert.StartsWith("training stopped at epoch 2, step 2: the cross entropy is NaN.", e.Message);
        Assert.Equal(3 + 1, steps); // epoch 1's three steps and the first good step of epoch 2: none after the bad one
        var run = new RunDirectory(setup.RunDirectory);
        Assert.Equal([1], run.ReadMetrics().Select(m => m.Epoch));
        Assert.Equal(RunStatus.Failed, run.ReadStatus()!.Status);
        Assert.False(File.Exists(run.ResultsFile));
        using var checkpoint = Peft.Engine.Formats.SafeTensors.Open(run.CheckpointFile);
        var manifest = JsonSerializer.Deserialize<CheckpointManifest>(checkpoint.Metadata[RunDirectory.ManifestKey],
            new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.CamelCase })!;
        Assert.Equal(1, manifest.State.Epoch); // the end of epoch 1, the last good state
    }

    [Fact]
    public void Ctrl_c_after_the_last_evaluation_exits_before_the_results_and_the_next_run_reports_them()
    {
        using var vit = TinyTask.Backbone();
        using var train = TinyTask.Source(64, 3, 32, shuffle: true);
        using var test = TinyTask.Source(64, 4, 32, shuffle: false);
        var setup = Setup(BaselineKind.Linear, vit, Recipe(epochs: 2) with { EvalEvery = 2 }, "late", train, test);
        using var cancel = new CancellationTokenSource();
        double? reported = null;
        // The last test batch is evaluated: from here on only checkpoint, results and adapter remain to be written.
        var progress = new SyncProgress(p =>
        {
            if (p.Phase == "test" && p.Step == p.StepsPerEpoch)
            {
                reported = p.Accuracy;
                cancel.Cancel();
            }
        });
        Assert.Throws<OperationCanceledException>(() => new Trainer(setup).Run(progress, cancel.Token));
        var run = new RunDirectory(setup.RunDirectory);
        Assert.Equal(RunStatus.Interrupted, run.ReadStatus()!.Status);
        Assert.False(File.Exists(run.ResultsFile));
        Assert.True(run.HasCheckpoint);

        using var again = TinyTask.Backbone();
        var result = new Trainer(Setup(BaselineKind.Linear, again, Recipe(epochs: 2) with { EvalEvery = 2 }, "late", train, test)).Run();
        Assert.Equal(reported, result.LastEpoch!.Test);
        Assert.True(File.Exists(run.ResultsFile));
    }

    [Fact]
    public void Ctrl_c_during_an_evaluation_stops_it_at_the_next_batch()
    {
        using var vit = TinyTask.Backbone();
        using var train = TinyTask.Source(32, 3, 32, shuffle: true);
        using var test = TinyTask.Source(256, 4, 16, shuffle: false); // 16 batches
        var setup = Setup(BaselineKind.Bias, vit, Recipe(epochs: 1), "eval", train, test);
        using var cancel = new CancellationTokenSource();
        var evaluated = new List<int>();
        var progress = new SyncProgress(p =>
        {
            if (p.Phase != "test") return;
            evaluated.Add(p.Step);
            if (p.Step == 32) cancel.Cancel(); // after the second batch
        });
        Assert.Throws<OperationCanceledException>(() => new Trainer(setup).Run(progress, cancel.Token));
        Assert.Equal([16, 32], evaluated);
        Assert.Equal(RunStatus.Interrupted, new RunDirectory(setup.RunDirectory).ReadStatus()!.Status);
    }

    [Fact]
    public void Metrics_of_attempts_that_did_not_reach_the_checkpoint_are_not_reported_twice()
    {
        using var train = TinyTask.Source(64, 3, 32, shuffle: true);
        var recipe = Recipe(epochs: 3) with { CacheFeatures = false, EvalEvery = 100 };
        using (var vit = TinyTask.Backbone()) new Trainer(Setup(BaselineKind.Linear, vit, recipe, "whole", train)).Run();
        var expected = new RunDirectory(Path.Combine(_dir.FullName, "whole")).ReadMetrics().Select(m => (m.Epoch, m.Loss)).ToList();

        // Interrupted after epoch 2's checkpoint; then the disk filled while epoch 3's line was appended.
        using (var vit = TinyTask.Backbone())
        {
            using var cancel = new CancellationTokenSource();
            var steps = 0;
            Assert.Throws<OperationCanceledException>(() => new Trainer(Setup(BaselineKind.Linear, vit, recipe, "torn", train))
                .Run(new SyncProgress(p => { if (p.Phase == "train" && ++steps == 5) cancel.Cancel(); }), cancel.Token));
        }
        var torn = new RunDirectory(Path.Combine(_dir.FullName, "torn"));
        File.AppendAllText(torn.MetricsFile, """{"epoch":3,"step":6,"lr":0.1,"lo""");
        using (var vit = TinyTask.Backbone()) new Trainer(Setup(BaselineKind.Linear, vit, recipe, "torn", train)).Run();
        Assert.Equal(expected, torn.ReadMetrics().Select(m => (m.Epoch, m.Loss)));

        // The checkpoint deleted: the run starts over, and its metrics with it.
        File.Delete(torn.CheckpointFile);
        using (var vit = TinyTask.Backbone()) new Trainer(Setup(BaselineKind.Linear, vit, recipe, "torn", train)).Run();
        Assert.Equal(expected, torn.ReadMetrics().Select(m => (m.Epoch, m.Loss)));
    }

    [Fact]
    public void A_corrupt_checkpoint_is_named_with_how_to_go_on()
    {
        using var train = TinyTask.Source(64, 3, 32, shuffle: true);
        var recipe = Recipe(epochs: 2) with { CacheFeatures = false };
        using (var vit = TinyTask.Backbone())
        {
            using var cancel = new CancellationTokenSource();
            Assert.Throws<OperationCanceledException>(() => new Trainer(Setup(BaselineKind.Linear, vit, recipe, "corrupt", train))
                .Run(new SyncProgress(p => { if (p.Phase == "train" && p.Step == 2) cancel.Cancel(); }), cancel.Token));
        }
        var run = new RunDirectory(Path.Combine(_dir.FullName, "corrupt"));
        var bytes = File.ReadAllBytes(run.CheckpointFile);
        File.WriteAllBytes(run.CheckpointFile, bytes[..(bytes.Length / 2)]);
        using var again = TinyTask.Backbone();
        var e = Assert.Throws<InvalidDataException>(() => new Trainer(Setup(BaselineKind.Linear, again, recipe, "corrupt", train)).Run());
        Assert.Contains(run.CheckpointFile, e.Message);
        Assert.Contains("Set Run:Resume=false to start the run over", e.Message);
    }

    [Fact]
    public void Peak_memory_is_read_from_proc_status_whatever_the_width_of_its_figure()
    {
        string[] status = ["Name:\tdotnet", "VmPeak:\t25374208 kB", "VmHWM:\t11525424 kB", "VmRSS:\t  321456 kB"];
        Assert.Equal(11525424L * 1024, ProcessMemory.Parse(status, "VmHWM:"));
        Assert.Equal(321456L * 1024, ProcessMemory.Parse(status, "VmRSS:"));
        Assert.Equal(0, ProcessMemory.Parse(status, "VmSwap:"));
    }

    /// <summary>IProgress that reports synchronously on the training thread (Progress&lt;T&gt; posts asynchronously).</summary>
    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }

    /// <summary>The batches of another source, with NaN images in one batch of one epoch.</summary>
    private sealed class PoisonedSource(IBatchSource inner, int epoch, int batch) : IBatchSource
    {
        public int SampleCount => inner.SampleCount;
        public int BatchCount => inner.BatchCount;
        public TimeSpan WaitTime => inner.WaitTime;

        public IEnumerable<LabeledBatch> Batches(int e, CancellationToken cancellationToken)
        {
            var index = 0;
            foreach (var b in inner.Batches(e, cancellationToken))
            {
                if (e == epoch && index == batch)
                {
                    using (b) yield return new LabeledBatch(b.Images.mul(float.NaN), b.Labels.alias());
                }
                else yield return b;
                index++;
            }
        }
    }
}
