using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Backbone;
using Peft.Configuration;
using Peft.Host.Hosting;
using Peft.Host.Verbs;
using Peft.Torch;
using Serilog;

namespace Peft.Host.Bench;

/// <summary>One method on one backbone: Peft's measurement next to PyTorch's, and the step's FLOPs.</summary>
public sealed record SpeedRow(string Model, string Method, StepMeasurement Peft, StepMeasurement Torch, double TrainFlops, double EvalFlops)
{
    /// <summary>Peft's training step time over PyTorch's (target ≤ 1.0).</summary>
    public double TrainRatio => Peft.TrainStepSeconds / Torch.TrainStepSeconds;

    public double EvalRatio => Peft.EvalStepSeconds / Torch.EvalStepSeconds;
    public double MemoryRatio => (double)Peft.PeakResidentBytes / Torch.PeakResidentBytes;
    public double PeftTrainGflops => TrainFlops / Peft.TrainStepSeconds / 1e9;
    public double TorchTrainGflops => TrainFlops / Torch.TrainStepSeconds / 1e9;
    public double PeftEvalGflops => EvalFlops / Peft.EvalStepSeconds / 1e9;
}

/// <summary>
/// `peft bench speed`: for each backbone and method, Peft's training and evaluation step (`peft bench step`) and the
/// same model and method in PyTorch eager (tests/reference/speed_reference.py, Debian's python3-torch on the same
/// libtorch), each in its own process with the same thread count, measured in the same run; then the ratios, the
/// achieved GFLOP/s over the machine's measured GEMM peak, and the report (benchmarks/speed.md, .json, .svg).
/// </summary>
public sealed class SpeedBenchVerb(IConfiguration configuration) : IVerb
{
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var options = HyperParameters.Load<SpeedBenchOptions>(configuration).GetValueOrThrow();
        var started = DateTime.UtcNow;
        var threads = options.Threads > 0 ? options.Threads : Environment.ProcessorCount;
        torch.set_num_threads(threads);
        var models = options.Models.Count > 0 ? options.Models : ["vit-s16", "vit-b16"];
        var benchMethods = (options.Methods.Count > 0 ? options.Methods : BenchMethod.All.Select(m => m.Label)).Select(BenchMethod.Get).ToList();
        var script = Path.Combine(PeftProcessPaths.RepoRoot(), "tests", "reference", "speed_reference.py");
        if (!File.Exists(script)) throw new FileNotFoundException($"the PyTorch side {script} is missing", script);

        // The machine's GEMM peak through the same binding and thread count: the best of two square sizes.
        var gemm = new[] { EngineProbe.Matmul(1024, 1024, 1024, iters: 20), EngineProbe.Matmul(2048, 2048, 2048, iters: 4) };
        var peak = gemm.Max(g => g.BindingGflops);
        Log.Information("GEMM peak {Peak:F1} GFLOP/s ({Threads} threads, libtorch {Version}, {Blas})", peak, threads, torch.__version__,
            EngineDiagnostics.BlasName());

        var rows = new List<SpeedRow>();
        var failures = new List<string>();
        Directory.CreateDirectory(options.RunsDir);
        foreach (var model in models)
        foreach (var method in benchMethods)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var stem = Path.Combine(options.RunsDir, $"{model}-{method.Label}");
            try
            {
                var peft = await MeasurePeft(model, method, options, threads, stem, cancellationToken);
                var torchSide = await MeasureTorch(model, method, options, threads, script, stem, cancellationToken);
                var spec = VitSpec.Preset(model);
                var row = new SpeedRow(model, method.Label, peft, torchSide, StepCost.TrainFlops(spec, method.Label, options.BatchSize),
                    StepCost.ForwardFlops(spec, method.Label, options.BatchSize));
                rows.Add(row);
                Log.Information("{Model} {Method}: train {PeftTrain:F2} img/s vs PyTorch {TorchTrain:F2} (x{Ratio:F3} step time), eval {PeftEval:F1} vs {TorchEval:F1}, " +
                                "peak memory {PeftMem:F0} vs {TorchMem:F0} MiB, {Gflops:F0} GFLOP/s ({Share:P0} of GEMM peak), data wait {Wait:P1}",
                    model, method.Label, peft.TrainImagesPerSecond, torchSide.TrainImagesPerSecond, row.TrainRatio, peft.EvalImagesPerSecond,
                    torchSide.EvalImagesPerSecond, peft.PeakResidentBytes / 1048576.0, torchSide.PeakResidentBytes / 1048576.0, row.PeftTrainGflops,
                    row.PeftTrainGflops / peak, peft.DataWaitShare ?? 0);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.Error("{Model} {Method} failed: {Message}", model, method.Label, e.Message);
                failures.Add($"{model}/{method.Label}: {e.Message}");
            }
        }

        var context = new SpeedReport.Context(DateTime.UtcNow - started, threads, peak, torch.__version__, EngineDiagnostics.BlasName(),
            EngineDiagnostics.HostAllocator(), options);
        Directory.CreateDirectory(options.Output);
        var outStem = Path.Combine(options.Output, "speed");
        File.WriteAllText(outStem + ".json", SpeedReport.Json(rows, context));
        File.WriteAllText(outStem + ".md", SpeedReport.Markdown(rows, context));
        File.WriteAllText(outStem + ".svg", SpeedReport.Svg(rows));
        Console.WriteLine(SpeedReport.Summary(rows, peak));
        Log.Information("Wrote {Stem}.md, .json and .svg in {Elapsed:hh\\:mm\\:ss}", outStem, DateTime.UtcNow - started);
        if (failures.Count == 0) return ExitCodes.Success;
        Log.Error("{Count} measurements failed:\n  {Failures}", failures.Count, string.Join("\n  ", failures));
        return ExitCodes.Failure;
    }

    private static async Task<StepMeasurement> MeasurePeft(string model, BenchMethod method, SpeedBenchOptions options, int threads, string stem,
        CancellationToken ct)
    {
        var output = Path.GetFullPath(stem + "-peft.json");
        string[] args =
        [
            "bench", "step", $"SpeedBench:Model={model}", $"SpeedBench:Method={method.Label}", $"Method:Name={method.MethodName}", .. method.Overrides,
            // DA-VPT seeds its clustering from class means before the first step; two images a class keep that start-up short.
            .. method.MethodName.StartsWith("davpt", StringComparison.Ordinal) ? new[] { "Method:Options:ClassMeanSamples=2" } : [],
            $"SpeedBench:BatchSize={options.BatchSize}", $"SpeedBench:Steps={options.Steps}", $"SpeedBench:WarmupSteps={Math.Max(1, options.WarmupSteps)}",
            $"SpeedBench:EvalSteps={options.EvalSteps}", $"SpeedBench:RunsDir={Path.GetFullPath(options.RunsDir)}", $"SpeedBench:StepOutput={output}",
            $"Run:Threads={threads}",
        ];
        var outcome = await ChildProcess.Peft(stem + "-peft.log", args, ct);
        return Read(output, outcome);
    }

    private static async Task<StepMeasurement> MeasureTorch(string model, BenchMethod method, SpeedBenchOptions options, int threads, string script,
        string stem, CancellationToken ct)
    {
        var output = Path.GetFullPath(stem + "-torch.json");
        string[] args =
        [
            script, "--model", model, "--method", method.Label, "--steps", $"{options.Steps}", "--warmup", $"{Math.Max(1, options.WarmupSteps)}",
            "--eval-steps", $"{options.EvalSteps}", "--batch", $"{options.BatchSize}", "--threads", $"{threads}", "--output", output,
        ];
        var outcome = await ChildProcess.Run(options.Python, args, stem + "-torch.log", ct);
        return Read(output, outcome);
    }

    private static StepMeasurement Read(string output, ChildProcess.Outcome outcome)
    {
        if (outcome.ExitCode != 0 || !File.Exists(output))
            throw new InvalidOperationException($"exited with {outcome.ExitCode}; log {outcome.LogPath}:\n{ChildProcess.Tail(outcome.LogPath)}");
        return JsonSerializer.Deserialize<StepMeasurement>(File.ReadAllText(output), StepMeasurement.Json)!;
    }
}

/// <summary>Where the repository is: the folder above the running host that holds Peft.sln (else the working directory).</summary>
public static class PeftProcessPaths
{
    public static string RepoRoot()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Peft.sln"))) return dir.FullName;
        return Environment.CurrentDirectory;
    }
}

/// <summary>The speed tables (markdown), raw figures (JSON) and chart (SVG).</summary>
public static class SpeedReport
{
    public sealed record Context(TimeSpan Elapsed, int Threads, double GemmPeakGflops, string Libtorch, string Blas, string HostAllocator,
        SpeedBenchOptions Options);

    private static string F(double v, int digits = 2) => v.ToString("F" + digits, CultureInfo.InvariantCulture);

    public static string Json(IReadOnlyList<SpeedRow> rows, Context c) => JsonSerializer.Serialize(new
    {
        benchmark = "speed and memory against PyTorch eager", generated = DateTime.UtcNow.ToString("u", CultureInfo.InvariantCulture),
        elapsedSeconds = c.Elapsed.TotalSeconds, threads = c.Threads, gemmPeakGflops = c.GemmPeakGflops, libtorch = c.Libtorch, blas = c.Blas,
        hostAllocator = c.HostAllocator,
        options = new { c.Options.BatchSize, c.Options.Steps, c.Options.WarmupSteps, c.Options.EvalSteps },
        rows = rows.Select(r => new
        {
            r.Model, r.Method, r.TrainRatio, r.EvalRatio, r.MemoryRatio, r.TrainFlops, r.EvalFlops, r.PeftTrainGflops, r.TorchTrainGflops,
            peftShareOfGemmPeak = r.PeftTrainGflops / c.GemmPeakGflops, peft = r.Peft, pytorch = r.Torch,
        }),
    }, StepMeasurement.Json);

    public static string Summary(IReadOnlyList<SpeedRow> rows, double peak)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{"model",-8} {"method",-12} {"train img/s",12} {"torch",8} {"time x",7} {"eval img/s",11} {"torch",8} {"mem MiB",8} {"torch",7} {"GEMM %",7}");
        foreach (var r in rows)
            sb.AppendLine($"{r.Model,-8} {r.Method,-12} {F(r.Peft.TrainImagesPerSecond),12} {F(r.Torch.TrainImagesPerSecond),8} {F(r.TrainRatio, 3),7} " +
                          $"{F(r.Peft.EvalImagesPerSecond),11} {F(r.Torch.EvalImagesPerSecond),8} {r.Peft.PeakResidentBytes / 1048576.0,8:F0} " +
                          $"{r.Torch.PeakResidentBytes / 1048576.0,7:F0} {100 * r.PeftTrainGflops / peak,7:F1}");
        return sb.ToString();
    }

    public static string Markdown(IReadOnlyList<SpeedRow> rows, Context c)
    {
        var md = new StringBuilder();
        md.AppendLine("# Speed and memory against PyTorch eager");
        md.AppendLine();
        md.AppendLine("Generated by `peft bench speed` — reproduce with");
        md.AppendLine();
        md.AppendLine("    bash scripts/bench.sh speed");
        md.AppendLine();
        md.AppendLine($"on {Environment.ProcessorCount} cores in {c.Elapsed:hh\\:mm\\:ss}. Raw figures: [speed.json](speed.json).");
        md.AppendLine();
        md.AppendLine($"- **Same engine, same machine, same run**: Peft on libtorch {c.Libtorch} through its C ABI shim, and PyTorch eager " +
                      $"(Debian's python3-torch, the same libtorch build) running `tests/reference/speed_reference.py` — the parity references " +
                      $"of the method plugins sized like the real backbones. {c.Threads} threads on both sides; BLAS: {c.Blas}. Peft's host memory: " +
                      $"{c.HostAllocator}; PyTorch's: glibc's defaults, as a user runs it.");
        md.AppendLine($"- **Workload**: timm ViT-S/16 and ViT-B/16 at 224 px with random weights, batch {c.Options.BatchSize}, 10 classes, each method " +
                      $"with its default options and its own optimizer; {c.Options.WarmupSteps} untimed + {c.Options.Steps} timed training steps and " +
                      $"1 + {c.Options.EvalSteps} evaluation batches, medians reported. Every measurement is a process of its own, so its peak " +
                      "resident memory (VmHWM / ru_maxrss) is its own.");
        md.AppendLine("- **Peft's data** flows through the real pipeline (Fashion-MNIST grey images → RGB, bilinear 28 → 224, normalise, one " +
                      "loader worker) and its step times exclude the measured wait, reported separately; PyTorch's side reuses one random batch.");
        md.AppendLine($"- **GFLOP/s** count the step's matrix products (forward; backward again for activation gradients; once more for full " +
                      $"fine-tuning's weight gradients), over the GEMM peak measured through the same binding just before: **{F(c.GemmPeakGflops, 1)} GFLOP/s**.");
        md.AppendLine();
        md.AppendLine("| model | method | train img/s Peft | PyTorch | step time Peft/PyTorch | eval img/s Peft | PyTorch | eval time ratio | peak RSS Peft | PyTorch | memory ratio | train GFLOP/s (of GEMM peak) | data wait |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Model} | {r.Method} | {F(r.Peft.TrainImagesPerSecond)} | {F(r.Torch.TrainImagesPerSecond)} | **{F(r.TrainRatio, 3)}** | " +
                          $"{F(r.Peft.EvalImagesPerSecond)} | {F(r.Torch.EvalImagesPerSecond)} | {F(r.EvalRatio, 3)} | {r.Peft.PeakResidentBytes / 1048576.0:F0} MiB | " +
                          $"{r.Torch.PeakResidentBytes / 1048576.0:F0} MiB | {F(r.MemoryRatio, 3)} | {F(r.PeftTrainGflops, 1)} ({100 * r.PeftTrainGflops / c.GemmPeakGflops:F0} %) | " +
                          $"{100 * (r.Peft.DataWaitShare ?? 0):F2} % |");
        md.AppendLine();
        if (rows.Count > 0)
        {
            var worst = rows.MaxBy(r => r.TrainRatio)!;
            var memWorst = rows.MaxBy(r => r.MemoryRatio)!;
            md.AppendLine("## Against the targets");
            md.AppendLine();
            md.AppendLine($"- Training step time at most 1.0× PyTorch's for every method (aim 0.9×): {(worst.TrainRatio <= 1.0 ? "**met**" : "**not met**")}; " +
                          $"geometric mean {F(GeoMean(rows.Select(r => r.TrainRatio)), 3)}×, worst {F(worst.TrainRatio, 3)}× ({worst.Model} {worst.Method}), " +
                          $"{rows.Count(r => r.TrainRatio <= 0.9)} of {rows.Count} at or below 0.9×.");
            md.AppendLine($"- Peak memory at most PyTorch's: {(memWorst.MemoryRatio <= 1.0 ? "**met**" : "**not met**")}; worst {F(memWorst.MemoryRatio, 3)}× " +
                          $"({memWorst.Model} {memWorst.Method}).");
            md.AppendLine($"- Data pipeline never the bottleneck: the largest share of the training loop spent waiting for data is " +
                          $"{100 * rows.Max(r => r.Peft.DataWaitShare ?? 0):F2} %.");
            md.AppendLine();
            md.AppendLine("## A cheaper exact computation: linear probing from cached features");
            md.AppendLine();
            md.AppendLine("Linear probing never changes the backbone's features, and the VTAB protocol has no augmentation, so Peft computes each " +
                          "image's feature once and trains the head on the cache (`Trainer:CacheFeatures`, exact: same batches, same order; " +
                          "tested against the uncached run). From the figures above, for the VTAB-1k budget of 1,000 images × 100 epochs:");
            md.AppendLine();
            md.AppendLine("| model | from images (100 × 1,000 / train img/s) | from cached features (1,000 / eval img/s) | gain |");
            md.AppendLine("|---|---:|---:|---:|");
            foreach (var r in rows.Where(r => r.Method == "linear"))
            {
                var uncached = 100 * 1000 / r.Peft.TrainImagesPerSecond;
                var cached = 1000 / r.Peft.EvalImagesPerSecond;
                md.AppendLine($"| {r.Model} | {uncached:F0} s | {cached:F0} s | ×{uncached / cached:F0} |");
            }
            md.AppendLine();
            md.AppendLine("The head's own steps on cached features (a 384- or 768-wide linear layer) take microseconds and are left out. " +
                          "Measured end to end on the mini VTAB-1k, see vtab-mini.md.");
        }
        md.AppendLine();
        md.AppendLine("![training throughput, Peft and PyTorch](speed.svg)");
        return md.ToString();
    }

    private static double GeoMean(IEnumerable<double> values)
    {
        var list = values.ToList();
        return Math.Exp(list.Average(Math.Log));
    }

    /// <summary>Paired bars per model and method: Peft's and PyTorch's training images/s.</summary>
    public static string Svg(IReadOnlyList<SpeedRow> rows)
    {
        const int left = 170, bar = 9, pair = 26, top = 40, width = 520;
        var height = top + rows.Count * pair + 50;
        var max = rows.Count == 0 ? 1 : rows.Max(r => Math.Max(r.Peft.TrainImagesPerSecond, r.Torch.TrainImagesPerSecond));
        var svg = new StringBuilder();
        svg.AppendLine($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{left + width + 120}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.AppendLine($"<rect width=\"{left + width + 120}\" height=\"{height}\" fill=\"white\"/>");
        svg.AppendLine($"<text x=\"{left}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Training images/s, batch 32 (longer is faster)</text>");
        for (var i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            var y = top + i * pair;
            svg.AppendLine($"<text x=\"{left - 8}\" y=\"{y + 13}\" text-anchor=\"end\">{r.Model} {r.Method}</text>");
            var wp = width * r.Peft.TrainImagesPerSecond / max;
            var wt = width * r.Torch.TrainImagesPerSecond / max;
            svg.AppendLine($"<rect x=\"{left}\" y=\"{y}\" width=\"{F(wp, 1)}\" height=\"{bar}\" fill=\"#1f77b4\"/>");
            svg.AppendLine($"<rect x=\"{left}\" y=\"{y + bar + 1}\" width=\"{F(wt, 1)}\" height=\"{bar}\" fill=\"#ff7f0e\"/>");
            svg.AppendLine($"<text x=\"{F(left + Math.Max(wp, wt) + 6, 1)}\" y=\"{y + 13}\">{F(r.Peft.TrainImagesPerSecond)} / {F(r.Torch.TrainImagesPerSecond)} (×{F(r.TrainRatio, 3)} time)</text>");
        }
        svg.AppendLine($"<rect x=\"{left}\" y=\"{height - 25}\" width=\"12\" height=\"10\" fill=\"#1f77b4\"/><text x=\"{left + 16}\" y=\"{height - 16}\">Peft</text>");
        svg.AppendLine($"<rect x=\"{left + 70}\" y=\"{height - 25}\" width=\"12\" height=\"10\" fill=\"#ff7f0e\"/><text x=\"{left + 86}\" y=\"{height - 16}\">PyTorch eager</text>");
        svg.AppendLine("</svg>");
        return svg.ToString();
    }
}
