using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Options;
using Peft.Configuration;
using Peft.Host.Hosting;
using Peft.Host.Plugins;
using Peft.Host.Verbs;
using Peft.Training;
using Serilog;

namespace Peft.Bench;

/// <summary>A benchmark method: its label in the tables, and the method and options it runs.</summary>
public sealed record BenchMethod(string Label, string MethodName, IReadOnlyList<string> Overrides)
{
    public static readonly IReadOnlyList<BenchMethod> All =
    [
        new("linear", "linear", []),
        new("full", "full", []),
        new("bias", "bias", []),
        new("vpt-shallow", "vpt", ["Method:Options:Mode=shallow"]),
        new("vpt-deep", "vpt", ["Method:Options:Mode=deep"]),
        new("gated", "gated", []),
        new("vapt", "vapt", []),
        new("davpt", "davpt", []),
        new("davpt+", "davpt+", []),
    ];

    public static BenchMethod Get(string label) => All.FirstOrDefault(m => m.Label == label) ?? throw new ArgumentException(
        $"unknown benchmark method '{label}'; known: {string.Join(", ", All.Select(m => m.Label))}");
}

/// <summary>One finished run of the benchmark, as the report needs it.</summary>
public sealed record VtabRun(string Task, string Method, string Phase, double LrScale, double BaseLr, int Seed, double? Val, double? Test,
    long TrainableParameters, long AdapterBytes, double WallSeconds, double TrainImagesPerSecond, double DataWaitShare, long PeakResidentBytes,
    bool CachedFeatures, string RunDirectory);

/// <summary>
/// `peft bench vtab`: the VTAB-1k protocol on the mini VTAB-1k (<see cref="MiniVtab"/>) with the pre-trained backbone:
/// per task and method, a learning-rate sweep trained on train800 and scored on val200 (last epoch), then the chosen
/// rate retrained on train800val200 with several seeds and scored on test (last epoch). Test is never used to select.
/// Each run is a `peft train` process with one libtorch thread, <see cref="VtabBenchOptions.Parallel"/> at a time;
/// finished runs are reused, so an interrupted benchmark continues where it stopped.
/// </summary>
public sealed class VtabBenchVerb(IConfiguration configuration, MethodCatalog methods) : IVerb
{
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var options = HyperParameters.Load<VtabBenchOptions>(configuration).GetValueOrThrow();
        var job = new JobFactory(configuration, methods);
        var started = DateTime.UtcNow;

        // 1. The pre-trained backbone (cached by `peft pretrain`) and the tasks (cached by their manifest).
        var checkpoint = job.Backbone.Checkpoint ?? throw new InvalidOperationException("Backbone:Checkpoint names no pre-trained backbone");
        var pretrainLog = Path.Combine(options.RunsDir, "pretrain.log");
        Log.Information("Pre-trained backbone {Checkpoint} (peft pretrain; cached)", checkpoint);
        var pretrain = await ChildProcess.Peft(pretrainLog, ["pretrain", .. ForwardedOverrides()], cancellationToken);
        if (pretrain.ExitCode != 0)
            throw new InvalidOperationException($"peft pretrain failed ({pretrain.ExitCode}); see {pretrainLog}:\n{ChildProcess.Tail(pretrainLog)}");
        var backboneKey = JsonDocument.Parse(File.ReadAllText(checkpoint + ".json")).RootElement.GetProperty("key").GetString();
        var tasksKey = MiniVtab.Build(options.DataDir, job.Data.Root, options.Digits, options.DataSeed, m => Log.Information("{Message}", m));

        var tasks = options.Tasks.Count > 0 ? options.Tasks : MiniVtab.Tasks.Select(t => t.Name).ToList();
        foreach (var t in tasks)
            if (MiniVtab.Tasks.All(k => k.Name != t))
                throw new ArgumentException($"VtabBench:Tasks: unknown task '{t}'; known: {string.Join(", ", MiniVtab.Tasks.Select(k => k.Name))}");
        var benchMethods = (options.Methods.Count > 0 ? options.Methods : BenchMethod.All.Select(m => m.Label)).Select(BenchMethod.Get).ToList();
        var seeds = options.Quick ? options.Seeds.Take(1).ToList() : options.Seeds;
        var scales = options.Quick ? [1.0] : options.LrScales;

        // Runs live under a folder named by everything that changes their result, so stale runs are never reused.
        var identity = ContentHashing.HashText(string.Join("|", backboneKey, tasksKey, options.Epochs, "recipe-batch",
            string.Join(",", job.Data.Mean), string.Join(",", job.Data.Std)))[..10];
        var runsRoot = Path.GetFullPath(Path.Combine(options.RunsDir, identity));
        var pairs = tasks.SelectMany(t => benchMethods.Select(m => (Task: t, Method: m))).ToList();
        var total = pairs.Count * ((scales.Count > 1 ? scales.Count : 0) + seeds.Count);
        Log.Information("Mini VTAB-1k: {Tasks} tasks x {Methods} methods; sweep {Scales} x default lr, seeds {Seeds}, {Epochs} epochs; {Total} runs, {Parallel} at a time, under {Root}",
            tasks.Count, benchMethods.Count, string.Join("/", scales), string.Join(",", seeds), options.Epochs, total, options.Parallel, runsRoot);

        var quickRates = options.Quick ? QuickRates(options.QuickRatesFrom) : new Dictionary<(string, string), double>();
        var progress = new BenchProgress(total);
        var runs = new List<VtabRun>();
        var failures = new List<string>();
        await Parallel.ForEachAsync(pairs, new ParallelOptions { MaxDegreeOfParallelism = options.Parallel, CancellationToken = cancellationToken },
            async (pair, ct) =>
            {
                try
                {
                    var pairScales = quickRates.TryGetValue((pair.Task, pair.Method.Label), out var rate) ? [rate] : scales;
                    var done = await RunPair(pair.Task, pair.Method, pairScales, seeds, options, runsRoot, progress, ct);
                    lock (runs) runs.AddRange(done);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    Log.Error("{Task}/{Method} failed: {Message}", pair.Task, pair.Method.Label, e.Message);
                    lock (failures) failures.Add($"{pair.Task}/{pair.Method.Label}: {e.Message}");
                }
            });

        // The cheaper exact computation, shown: linear probing with and without the feature cache, same run otherwise.
        CacheGain? gain = null;
        if (benchMethods.Any(m => m.Label == "linear") && failures.Count == 0)
            gain = await MeasureCacheGain(tasks[0], options, runsRoot, seeds[0], runs, cancellationToken);

        var report = VtabReport.Build(runs, tasks, benchMethods.Select(m => m.Label).ToList(), options, gain,
            new VtabReport.Context(DateTime.UtcNow - started, identity, checkpoint, Environment.ProcessorCount));
        Directory.CreateDirectory(options.Output);
        var stem = Path.Combine(options.Output, options.Quick ? "vtab-mini-quick" : "vtab-mini");
        File.WriteAllText(stem + ".json", report.Json);
        File.WriteAllText(stem + ".md", report.Markdown);
        File.WriteAllText(stem + ".svg", report.Svg);
        Console.WriteLine(report.Summary);
        Log.Information("Wrote {Stem}.md, .json and .svg in {Elapsed:hh\\:mm\\:ss}", stem, DateTime.UtcNow - started);
        if (failures.Count == 0) return ExitCodes.Success;
        Log.Error("{Count} task/method pairs failed:\n  {Failures}", failures.Count, string.Join("\n  ", failures));
        return ExitCodes.Failure;
    }

    /// <summary>The learning-rate multiplier the full benchmark chose per (task, method), from its JSON; empty when absent.</summary>
    public static Dictionary<(string Task, string Method), double> QuickRates(string path)
    {
        var rates = new Dictionary<(string, string), double>();
        if (!File.Exists(path))
        {
            Log.Warning("Quick mode: {Path} not found; each method runs at its default learning rate", path);
            return rates;
        }
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        foreach (var row in json.RootElement.GetProperty("rows").EnumerateArray())
            foreach (var task in row.GetProperty("Tasks").EnumerateObject())
                rates[(task.Name, row.GetProperty("Method").GetString()!)] = task.Value.GetProperty("LrScale").GetDouble();
        Log.Information("Quick mode: learning rates chosen by the full benchmark's sweep, from {Path}", path);
        return rates;
    }

    /// <summary>Configuration given on this command line that the child runs must see too (backbone, data statistics, ...).</summary>
    private IReadOnlyList<string> ForwardedOverrides() => _forwarded ??=
    [
        .. configuration.AsEnumerable()
            .Where(kv => kv.Value is not null && ForwardedSections.Any(prefix => kv.Key.StartsWith(prefix, StringComparison.Ordinal)))
            .Select(kv => $"{kv.Key}={kv.Value}"),
    ];

    private IReadOnlyList<string>? _forwarded;
    private static readonly string[] ForwardedSections = ["Backbone:", "Pretrain:", "Data:Mean", "Data:Std", "Data:Root", "Trainer:BatchSize", "Plugins:"];

    private async Task<List<VtabRun>> RunPair(string task, BenchMethod method, IReadOnlyList<double> scales, IReadOnlyList<int> seeds,
        VtabBenchOptions options, string runsRoot, BenchProgress progress, CancellationToken ct)
    {
        var runs = new List<VtabRun>();
        var baseLr = DefaultLr(method);
        var chosen = scales[0];
        if (scales.Count > 1)
        {
            // Sweep: train800 → val200, last-epoch validation top-1; the first seed. Ties keep the earlier (smaller) rate.
            foreach (var scale in scales)
                runs.Add(await Train(task, method, "sweep", baseLr, scale, seeds[0], options, runsRoot, progress, ct));
            var best = runs.MaxBy(r => r.Val ?? -1)!;
            chosen = runs.First(r => r.Val == best.Val).LrScale;
        }
        foreach (var seed in seeds)
            runs.Add(await Train(task, method, "final", baseLr, chosen, seed, options, runsRoot, progress, ct));
        return runs;
    }

    private async Task<VtabRun> Train(string task, BenchMethod method, string phase, double baseLr, double scale, int seed, VtabBenchOptions options,
        string runsRoot, BenchProgress progress, CancellationToken ct, bool cacheFeatures = true)
    {
        var name = $"{task}/{method.Label}/{phase}-lr{scale.ToString("G4", CultureInfo.InvariantCulture)}-s{seed}{(cacheFeatures ? "" : "-nocache")}";
        var runDir = Path.Combine(runsRoot, name);
        var directory = new RunDirectory(runDir);
        var resultsPath = directory.ResultsFile;
        var wall = 0.0;
        var reused = File.Exists(resultsPath);
        if (!reused)
        {
            var warmup = Math.Max(1, options.Epochs / 10);
            string[] args =
            [
                "train", .. ForwardedOverrides(),
                $"Method:Name={method.MethodName}", .. method.Overrides,
                // Every class and image of the task: the shipped appsettings.json picks the main job's classes and count.
                "Data:Format=vtab", $"Data:Root={Path.GetFullPath(Path.Combine(options.DataDir, task))}", "Data:Classes=", "Data:TrainSamples=0",
                $"Data:ValSamples={(phase == "sweep" ? 200 : 0)}", "Data:Workers=1", "Data:Augment=false",
                $"Trainer:Epochs={options.Epochs}", $"Trainer:WarmupEpochs={warmup}", $"Trainer:EvalEvery={options.Epochs}",
                "Trainer:CheckpointEvery=0", $"Trainer:BaseLr={(baseLr * scale).ToString("R", CultureInfo.InvariantCulture)}",
                $"Trainer:CacheFeatures={cacheFeatures}",
                $"Run:Seed={seed}", "Run:Threads=1", $"Run:OutputDir={runsRoot}", $"Run:Name={name}", "Run:Resume=true",
            ];
            var outcome = await ChildProcess.Peft(Path.Combine(runDir + ".log"), args, ct);
            if (outcome.ExitCode != 0 || !File.Exists(resultsPath))
                throw new InvalidOperationException($"{name} exited with {outcome.ExitCode}; log {outcome.LogPath}:\n{ChildProcess.Tail(outcome.LogPath)}");
            wall = outcome.Wall.TotalSeconds;
            File.WriteAllText(Path.Combine(runDir, "wall.txt"), wall.ToString("R", CultureInfo.InvariantCulture));
        }
        else if (File.Exists(Path.Combine(runDir, "wall.txt")))
            wall = double.Parse(File.ReadAllText(Path.Combine(runDir, "wall.txt")), CultureInfo.InvariantCulture);

        var result = directory.ReadResults()!;
        var adapter = new FileInfo(directory.AdapterFile);
        var run = new VtabRun(task, method.Label, phase, scale, baseLr * scale, seed, result.LastEpoch?.Val, result.LastEpoch?.Test,
            result.TrainableParameters, adapter.Exists ? adapter.Length : 0, wall, result.TrainImagesPerSecond, result.DataWaitShare,
            result.PeakResidentBytes, result.CachedFeatures, runDir);
        progress.Done(run, reused);
        return run;
    }

    /// <summary>The method's own default base learning rate (its recipe; the sweep scales it).</summary>
    private double DefaultLr(BenchMethod method)
    {
        var entry = methods.Methods[method.MethodName];
        var defaults = entry.Factory.Options.Load(new ConfigurationBuilder().Build(), "Method:Options").GetValueOrThrow();
        return entry.Factory.DefaultRecipe().BaseLr;
    }

    public sealed record CacheGain(string Task, double CachedSeconds, double UncachedSeconds, double? CachedTest, double? UncachedTest);

    private async Task<CacheGain?> MeasureCacheGain(string task, VtabBenchOptions options, string runsRoot, int seed, List<VtabRun> runs,
        CancellationToken ct)
    {
        var cached = runs.FirstOrDefault(r => r.Task == task && r.Method == "linear" && r.Phase == "final" && r.Seed == seed);
        if (cached is null || cached.WallSeconds <= 0) return null;
        var linear = BenchMethod.Get("linear");
        var uncached = await Train(task, linear, "final", DefaultLr(linear), cached.LrScale, seed, options, runsRoot, new BenchProgress(1), ct,
            cacheFeatures: false);
        return new CacheGain(task, cached.WallSeconds, uncached.WallSeconds, cached.Test, uncached.Test);
    }

    /// <summary>A log line per finished run with the count and an estimate of the time left.</summary>
    private sealed class BenchProgress(int total)
    {
        private readonly DateTime _start = DateTime.UtcNow;
        private int _done, _trained;

        public void Done(VtabRun run, bool reused)
        {
            var done = Interlocked.Increment(ref _done);
            var trained = reused ? Volatile.Read(ref _trained) : Interlocked.Increment(ref _trained);
            var elapsed = DateTime.UtcNow - _start;
            var eta = trained == 0 ? TimeSpan.Zero : elapsed / trained * (total - done);
            Log.Information("[{Done}/{Total}] {Task} {Method} {Phase} lr x{Scale} seed {Seed}: val {Val} test {Test} ({Wall:F0} s{Reused}), ETA {Eta:hh\\:mm\\:ss}",
                done, total, run.Task, run.Method, run.Phase, run.LrScale, run.Seed, Pct(run.Val), Pct(run.Test), run.WallSeconds,
                reused ? ", reused" : "", eta);
        }

        private static string Pct(double? v) => v is { } x ? (100 * x).ToString("F2", CultureInfo.InvariantCulture) : "-";
    }
}
