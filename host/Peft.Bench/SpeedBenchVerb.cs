using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Abstractions.Backbone;
using Peft.Configuration;
using Peft.Host.Hosting;
using Peft.Host.Verbs;
using Peft.Engine;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Bench;

/// <summary>
/// One method on one backbone: Peft's measurement next to PyTorch eager's (tuned: OpenBLAS on the CPU's own kernel;
/// out of the box: whatever OpenBLAS detected, when that differs) and a plain TorchSharp loop's, with the step's FLOPs.
/// </summary>
public sealed record SpeedRow(string Model, string Method, StepMeasurement Peft, StepMeasurement Torch, StepMeasurement? TorchOutOfBox,
    StepMeasurement? Plain, double TrainFlops, double EvalFlops)
{
    /// <summary>Peft's training step time over tuned PyTorch's (target ≤ 0.8).</summary>
    public double TrainRatio => Peft.TrainStepSeconds / Torch.TrainStepSeconds;

    public double? OutOfBoxRatio => TorchOutOfBox is null ? null : Peft.TrainStepSeconds / TorchOutOfBox.TrainStepSeconds;

    /// <summary>Peft's training step time over the plain TorchSharp loop's (target ≤ 1.05).</summary>
    public double? PlainRatio => Plain is null ? null : Peft.TrainStepSeconds / Plain.TrainStepSeconds;

    public double EvalRatio => Peft.EvalStepSeconds / Torch.EvalStepSeconds;
    public double MemoryRatio => (double)Peft.PeakResidentBytes / Torch.PeakResidentBytes;
    public double? PlainMemoryRatio => Plain is null ? null : (double)Peft.PeakResidentBytes / Plain.PeakResidentBytes;
    public double PeftTrainGflops => TrainFlops / Peft.TrainStepSeconds / 1e9;
    public double TorchTrainGflops => TrainFlops / Torch.TrainStepSeconds / 1e9;
    public double PeftEvalGflops => EvalFlops / Peft.EvalStepSeconds / 1e9;
}

/// <summary>
/// The BLAS kernel PyTorch 1.13 runs with: Debian's OpenBLAS 0.3.21 detects the CPU at load and picks a kernel, and on
/// CPUs newer than it knows (Xeon model 207 here) falls back to the generic "Prescott" one, 3–4× slower. The tuned
/// setting names the CPU's real family through OPENBLAS_CORETYPE, so a misdetected BLAS never flatters Peft.
/// </summary>
public sealed record BlasKernels(string Detected, string? Tuned, string? CoreType)
{
    /// <summary>
    /// Asks OpenBLAS (OPENBLAS_VERBOSE=2) which core it detects; when that core's instruction set is below the CPU's
    /// (the generic Prescott kernel on an AVX-512 Xeon), also which it runs with the CPU's family forced.
    /// </summary>
    public static async Task<BlasKernels> Probe(string python, string logDir, CancellationToken ct)
    {
        var detected = await Core(python, null, Path.Combine(logDir, "openblas-detected.log"), ct);
        var (family, level) = CpuFamily();
        if (family is null || Level(detected) >= level) return new(detected, null, null);
        var tuned = await Core(python, family, Path.Combine(logDir, "openblas-tuned.log"), ct);
        return new(detected, tuned, family);
    }

    /// <summary>The vector instruction set of an OpenBLAS x86 kernel: 1 SSE, 2 AVX, 3 AVX2, 4 AVX-512 (0: unknown).</summary>
    private static int Level(string core) => core.ToLowerInvariant() switch
    {
        "prescott" or "core2" or "penryn" or "dunnington" or "nehalem" or "atom" or "opteron" or "barcelona" or "bobcat" => 1,
        "sandybridge" or "bulldozer" or "piledriver" or "steamroller" or "excavator" => 2,
        "haswell" or "zen" or "skylake" => 3,
        "skylakex" or "cooperlake" or "sapphirerapids" => 4,
        _ => 0,
    };

    /// <summary>The OpenBLAS core of this CPU's instruction set: AVX-512 with BF16 is Cooper Lake's, AVX-512 Skylake-X's, AVX2 Haswell's.</summary>
    private static (string? Family, int Level) CpuFamily()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!File.Exists(cpuinfo)) return (null, 0);
        var flags = File.ReadLines(cpuinfo).FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(' ').ToHashSet() ?? [];
        return flags.Contains("avx512_bf16") ? ("Cooperlake", 4) : flags.Contains("avx512f") ? ("SkylakeX", 4)
            : flags.Contains("avx2") ? ("Haswell", 3) : (null, 0);
    }

    private static async Task<string> Core(string python, string? coreType, string log, CancellationToken ct)
    {
        var env = new Dictionary<string, string> { ["OPENBLAS_VERBOSE"] = "2" };
        if (coreType is not null) env["OPENBLAS_CORETYPE"] = coreType;
        await ChildProcess.Run(python, ["-c", "import torch; (torch.ones(64, 64) @ torch.ones(64, 64)).sum()"], log, ct, env);
        var line = File.ReadLines(log).FirstOrDefault(l => l.Contains("Core:", StringComparison.Ordinal));
        return line is null ? "unknown (no OpenBLAS report)" : line[(line.IndexOf("Core:", StringComparison.Ordinal) + 5)..].Trim();
    }
}

/// <summary>
/// `peft bench speed`: for each backbone and method, Peft's training and evaluation step (`peft bench step`), the same
/// model and method in PyTorch eager (tests/reference/speed_reference.py, Debian's python3-torch 1.13) with OpenBLAS on
/// the CPU's real kernel and, when OpenBLAS misdetects the CPU, also out of the box, and the same step as a plain
/// TorchSharp loop (`peft bench plain`, for the methods it has); each in its own process with the same thread count,
/// in the same run. Then the ratios, the achieved GFLOP/s over the GEMM peak measured through TorchSharp, and the
/// report (benchmarks/speed.md, .json, .svg).
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
        Directory.CreateDirectory(options.RunsDir);

        // The machine's GEMM peak through TorchSharp and the same thread count: the best of two square sizes.
        var gemm = new[] { EngineProbe.Matmul(1024, 1024, 1024, iters: 20), EngineProbe.Matmul(2048, 2048, 2048, iters: 4) };
        var peak = gemm.Max(g => g.Gflops);
        var engine = EngineName();
        var blas = await BlasKernels.Probe(options.Python, options.RunsDir, cancellationToken);
        Log.Information("GEMM peak {Peak:F1} GFLOP/s ({Threads} threads, {Engine}); PyTorch's OpenBLAS detects {Detected}{Tuned}", peak, threads,
            engine, blas.Detected, blas.CoreType is null ? "" : $", tuned: OPENBLAS_CORETYPE={blas.CoreType} runs {blas.Tuned}");

        var rows = new List<SpeedRow>();
        var failures = new List<string>();
        foreach (var model in models)
        foreach (var method in benchMethods)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var stem = Path.Combine(options.RunsDir, $"{model}-{method.Label}");
            try
            {
                var peft = await MeasurePeft(model, method, options, threads, stem, cancellationToken);
                var plain = PlainStepVerb.Methods.Contains(method.Label) ? await MeasurePlain(model, method, options, threads, stem, cancellationToken) : null;
                var tuned = await MeasureTorch(model, method, options, threads, script, stem + "-torch",
                    blas.CoreType is null ? null : new() { ["OPENBLAS_CORETYPE"] = blas.CoreType }, cancellationToken);
                var outOfBox = blas.CoreType is null || !options.TorchOutOfBox
                    ? null
                    : await MeasureTorch(model, method, options, threads, script, stem + "-torch-default", null, cancellationToken);
                var spec = VitSpec.Preset(model);
                var row = new SpeedRow(model, method.Label, peft, tuned, outOfBox, plain, StepCost.TrainFlops(spec, method.Label, options.BatchSize),
                    StepCost.ForwardFlops(spec, method.Label, options.BatchSize));
                rows.Add(row);
                Log.Information("{Model} {Method}: train step {Peft:F2} s, PyTorch {Torch:F2} s (x{Ratio:F3}), out of the box {OutOfBox}, plain TorchSharp {Plain}; " +
                                "peak memory {PeftMem:F0} vs {TorchMem:F0} MiB; {Gflops:F0} GFLOP/s ({Share:P0} of GEMM peak), data wait {Wait:P1}",
                    model, method.Label, peft.TrainStepSeconds, tuned.TrainStepSeconds, row.TrainRatio,
                    outOfBox is null ? "-" : $"{outOfBox.TrainStepSeconds:F2} s", plain is null ? "-" : $"{plain.TrainStepSeconds:F2} s (x{row.PlainRatio:F3})",
                    peft.PeakResidentBytes / 1048576.0, tuned.PeakResidentBytes / 1048576.0, row.PeftTrainGflops, row.PeftTrainGflops / peak,
                    peft.DataWaitShare ?? 0);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                Log.Error("{Model} {Method} failed: {Message}", model, method.Label, e.Message);
                failures.Add($"{model}/{method.Label}: {e.Message}");
            }
        }

        var context = new SpeedReport.Context(DateTime.UtcNow - started, threads, peak, engine, blas, TorchEngine.HostMemory, options, [.. _reused]);
        Directory.CreateDirectory(options.Output);
        var outStem = Path.Combine(options.Output, "speed");
        File.WriteAllText(outStem + ".json", SpeedReport.Json(rows, context));
        File.WriteAllText(outStem + ".md", SpeedReport.Markdown(rows, context));
        File.WriteAllText(outStem + ".svg", SpeedReport.Svg(rows, options.BatchSize));
        Console.WriteLine(SpeedReport.Summary(rows, peak));
        Log.Information("Wrote {Stem}.md, .json and .svg in {Elapsed:hh\\:mm\\:ss}", outStem, DateTime.UtcNow - started);
        if (failures.Count == 0) return ExitCodes.Success;
        Log.Error("{Count} measurements failed:\n  {Failures}", failures.Count, string.Join("\n  ", failures));
        return ExitCodes.Failure;
    }

    /// <summary>TorchSharp, libtorch and the CPU math library libtorch was built with.</summary>
    public static string EngineName()
    {
        var (mkl, mklVersion, oneDnn, _) = TorchEngine.CpuLibraries();
        return $"TorchSharp {TorchEngine.TorchSharpVersion} on libtorch {TorchEngine.LibTorchVersion}" +
               (mkl ? $", {mklVersion ?? "MKL"}" : "") + (oneDnn ? ", oneDNN" : "");
    }

    private static string[] StepArgs(string model, BenchMethod method, SpeedBenchOptions options, int threads, string output) =>
    [
        $"SpeedBench:Model={model}", $"SpeedBench:Method={method.Label}", $"SpeedBench:BatchSize={options.BatchSize}",
        $"SpeedBench:Steps={options.Steps}", $"SpeedBench:WarmupSteps={Math.Max(1, options.WarmupSteps)}", $"SpeedBench:EvalSteps={options.EvalSteps}",
        $"SpeedBench:RunsDir={Path.GetFullPath(options.RunsDir)}", $"SpeedBench:StepOutput={output}", $"Run:Threads={threads}",
    ];

    private async Task<StepMeasurement> MeasurePeft(string model, BenchMethod method, SpeedBenchOptions options, int threads, string stem,
        CancellationToken ct)
    {
        var output = Path.GetFullPath(stem + "-peft.json");
        if (Reusable(output, model, method.Label, options, threads) is { } earlier) return earlier;
        string[] args =
        [
            "step", $"Method:Name={method.MethodName}", .. method.Overrides,
            // DA-VPT seeds its clustering from class means before the first step; two images a class keep that start-up short.
            .. method.MethodName.StartsWith("davpt", StringComparison.Ordinal) ? new[] { "Method:Options:ClassMeanSamples=2" } : [],
            .. StepArgs(model, method, options, threads, output),
        ];
        var outcome = await ChildProcess.Bench(stem + "-peft.log", args, ct);
        return Read(output, outcome);
    }

    private async Task<StepMeasurement> MeasurePlain(string model, BenchMethod method, SpeedBenchOptions options, int threads, string stem,
        CancellationToken ct)
    {
        var output = Path.GetFullPath(stem + "-plain.json");
        if (Reusable(output, model, method.Label, options, threads) is { } earlier) return earlier;
        var outcome = await ChildProcess.Bench(stem + "-plain.log", ["plain", .. StepArgs(model, method, options, threads, output)], ct);
        return Read(output, outcome);
    }

    private async Task<StepMeasurement> MeasureTorch(string model, BenchMethod method, SpeedBenchOptions options, int threads, string script,
        string stem, Dictionary<string, string>? environment, CancellationToken ct)
    {
        var output = Path.GetFullPath(stem + ".json");
        if (Reusable(output, model, method.Label, options, threads) is { } earlier) return earlier;
        string[] args =
        [
            script, "--model", model, "--method", method.Label, "--steps", $"{options.Steps}", "--warmup", $"{Math.Max(1, options.WarmupSteps)}",
            "--eval-steps", $"{options.EvalSteps}", "--batch", $"{options.BatchSize}", "--threads", $"{threads}", "--output", output,
        ];
        var outcome = await ChildProcess.Run(options.Python, args, stem + ".log", ct, environment);
        return Read(output, outcome);
    }

    /// <summary>This run's measurement files read instead of measured again (SpeedBench:Reuse), with when they were written.</summary>
    private readonly List<(string File, DateTime Written)> _reused = [];

    /// <summary>With SpeedBench:Reuse, an earlier measurement of exactly this workload, else null.</summary>
    private StepMeasurement? Reusable(string output, string model, string method, SpeedBenchOptions options, int threads)
    {
        if (!options.Reuse || !File.Exists(output)) return null;
        StepMeasurement? earlier;
        try { earlier = JsonSerializer.Deserialize<StepMeasurement>(File.ReadAllText(output), StepMeasurement.Json); }
        catch (JsonException) { return null; }
        if (earlier is null || earlier.Model != model || earlier.Method != method || earlier.Batch != options.BatchSize || earlier.Threads != threads ||
            earlier.TrainStepsSeconds.Count != Math.Max(1, options.WarmupSteps) + options.Steps || earlier.EvalStepsSeconds.Count != 1 + options.EvalSteps)
            return null;
        var written = File.GetLastWriteTimeUtc(output);
        Log.Information("Reusing {File} (measured {Written:u})", output, written);
        _reused.Add((Path.GetFileName(output), written));
        return earlier;
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
    public sealed record Context(TimeSpan Elapsed, int Threads, double GemmPeakGflops, string Engine, BlasKernels Blas, string HostMemory,
        SpeedBenchOptions Options, IReadOnlyList<(string File, DateTime Written)> Reused);

    private static string F(double v, int digits = 2) => v.ToString("F" + digits, CultureInfo.InvariantCulture);
    private static string F(double? v, int digits = 2) => v is { } x ? F(x, digits) : "–";
    private static string MiB(long bytes) => $"{bytes / 1048576.0:F0}";

    public static string Json(IReadOnlyList<SpeedRow> rows, Context c) => JsonSerializer.Serialize(new
    {
        benchmark = "speed and memory against PyTorch eager and a plain TorchSharp loop", generated = DateTime.UtcNow.ToString("u", CultureInfo.InvariantCulture),
        elapsedSeconds = c.Elapsed.TotalSeconds, cpu = CpuName(), threads = c.Threads, gemmPeakGflops = c.GemmPeakGflops, engine = c.Engine,
        pytorchBlas = new { detected = c.Blas.Detected, coreType = c.Blas.CoreType, tuned = c.Blas.Tuned }, hostMemory = c.HostMemory,
        options = new { c.Options.BatchSize, c.Options.Steps, c.Options.WarmupSteps, c.Options.EvalSteps },
        rows = rows.Select(r => new
        {
            r.Model, r.Method, r.TrainRatio, r.OutOfBoxRatio, r.PlainRatio, r.EvalRatio, r.MemoryRatio, r.PlainMemoryRatio, r.TrainFlops, r.EvalFlops,
            r.PeftTrainGflops, r.TorchTrainGflops, peftShareOfGemmPeak = r.PeftTrainGflops / c.GemmPeakGflops,
            peft = r.Peft, pytorch = r.Torch, pytorchOutOfBox = r.TorchOutOfBox, plainTorchSharp = r.Plain,
        }),
    }, StepMeasurement.Json);

    public static string Summary(IReadOnlyList<SpeedRow> rows, double peak)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"{"model",-8} {"method",-12} {"step s",7} {"torch",7} {"x",6} {"default",8} {"plain",7} {"x",6} {"mem MiB",8} {"torch",7} {"GEMM %",7}");
        foreach (var r in rows)
            sb.AppendLine($"{r.Model,-8} {r.Method,-12} {F(r.Peft.TrainStepSeconds),7} {F(r.Torch.TrainStepSeconds),7} {F(r.TrainRatio, 3),6} " +
                          $"{F(r.TorchOutOfBox?.TrainStepSeconds),8} {F(r.Plain?.TrainStepSeconds),7} {F(r.PlainRatio, 3),6} " +
                          $"{MiB(r.Peft.PeakResidentBytes),8} {MiB(r.Torch.PeakResidentBytes),7} {100 * r.PeftTrainGflops / peak,7:F1}");
        return sb.ToString();
    }

    public static string Markdown(IReadOnlyList<SpeedRow> rows, Context c)
    {
        var md = new StringBuilder();
        md.AppendLine("# Speed and memory against PyTorch eager and a plain TorchSharp loop");
        md.AppendLine();
        md.AppendLine("Generated by `peft bench speed` — reproduce with");
        md.AppendLine();
        md.AppendLine("    bash scripts/bench.sh speed");
        md.AppendLine();
        md.AppendLine($"on {Environment.ProcessorCount} cores of {CpuName()} in {c.Elapsed:hh\\:mm\\:ss}. Raw figures: [speed.json](speed.json).");
        if (c.Reused.Count > 0)
            md.AppendLine($"{c.Reused.Count} measurements were read from an earlier run (SpeedBench:Reuse), not measured again: " +
                          string.Join(", ", c.Reused.Select(r => $"{r.File} ({r.Written.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC)")) + ".");
        md.AppendLine();
        md.AppendLine($"- **Peft**: {c.Engine}; host memory: {c.HostMemory}. **Plain TorchSharp**: the same step without Peft (`peft bench plain`: " +
                      "a functional ViT over a dictionary of weights, one dispose scope per step, TorchSharp's SGD, no hooks, trainer or data " +
                      "pipeline), for linear probing, bias tuning, full fine-tuning and VPT; its difference to Peft is the framework's overhead.");
        md.AppendLine($"- **PyTorch eager**: Debian's python3-torch 1.13 running `tests/reference/speed_reference.py` (the parity references of the " +
                      $"method plugins, sized like the real backbones), on Debian's OpenBLAS 0.3.21, which detects this CPU as **{c.Blas.Detected}**. " +
                      (c.Blas.CoreType is null
                          ? "That is the CPU's own kernel, so PyTorch is measured once."
                          : $"That is not the CPU's own kernel: the comparison is against PyTorch with `OPENBLAS_CORETYPE={c.Blas.CoreType}` " +
                            $"(OpenBLAS then runs **{c.Blas.Tuned}**); the out-of-the-box figures are shown beside it " +
                            (c.Options.TorchOutOfBox ? "." : "where measured (SpeedBench:TorchOutOfBox=false skips them).")));
        md.AppendLine($"- **Workload**: timm ViT-S/16 and ViT-B/16 at 224 px with random weights, batch {c.Options.BatchSize}, 10 classes, each method " +
                      $"with its default options and its own optimizer; {c.Options.WarmupSteps} untimed + {c.Options.Steps} timed training steps and " +
                      $"1 + {c.Options.EvalSteps} evaluation batches, medians reported; {c.Threads} threads on every side. Every measurement is a " +
                      "process of its own, so its peak resident memory (VmHWM / ru_maxrss) is its own.");
        md.AppendLine("- **Peft's data** flows through the real pipeline (Fashion-MNIST grey images → RGB, bilinear 28 → 224, normalise, one " +
                      "loader worker) and its step times exclude the measured wait, reported separately; the other sides reuse one random batch.");
        md.AppendLine($"- **GFLOP/s** count the step's matrix products (forward; backward again for activation gradients; once more for full " +
                      $"fine-tuning's weight gradients), over the GEMM peak measured through TorchSharp just before: **{F(c.GemmPeakGflops, 1)} GFLOP/s**.");
        md.AppendLine();
        md.AppendLine("| model | method | train step Peft | PyTorch tuned | Peft/PyTorch | PyTorch out of the box | plain TorchSharp | Peft/plain | " +
                      "eval img/s Peft | PyTorch | peak RSS Peft | PyTorch | plain | Peft/PyTorch memory | GFLOP/s (of GEMM peak) | data wait |");
        md.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows)
            md.AppendLine($"| {r.Model} | {r.Method} | {F(r.Peft.TrainStepSeconds)} s | {F(r.Torch.TrainStepSeconds)} s | **{F(r.TrainRatio, 3)}** | " +
                          $"{(r.TorchOutOfBox is { } d ? F(d.TrainStepSeconds) + " s" : "–")} | {(r.Plain is { } p ? F(p.TrainStepSeconds) + " s" : "–")} | " +
                          $"{F(r.PlainRatio, 3)} | {F(r.Peft.EvalImagesPerSecond)} | {F(r.Torch.EvalImagesPerSecond)} | {MiB(r.Peft.PeakResidentBytes)} MiB | " +
                          $"{MiB(r.Torch.PeakResidentBytes)} MiB | {(r.Plain is { } q ? MiB(q.PeakResidentBytes) + " MiB" : "–")} | {F(r.MemoryRatio, 3)} | " +
                          $"{F(r.PeftTrainGflops, 1)} ({100 * r.PeftTrainGflops / c.GemmPeakGflops:F0} %) | {100 * (r.Peft.DataWaitShare ?? 0):F2} % |");
        md.AppendLine();
        if (rows.Count > 0)
        {
            static string Met(bool ok) => ok ? "**met**" : "**not met**";
            var worst = rows.MaxBy(r => r.TrainRatio)!;
            var memWorst = rows.MaxBy(r => r.MemoryRatio)!;
            var plainRows = rows.Where(r => r.PlainRatio is not null).ToList();
            var vitB = rows.Where(r => r.Model == "vit-b16").ToList();
            md.AppendLine("## Against the targets");
            md.AppendLine();
            md.AppendLine($"- Training step at most 0.8× tuned PyTorch's for every method: {Met(worst.TrainRatio <= 0.8)}; geometric mean " +
                          $"{F(GeoMean(rows.Select(r => r.TrainRatio)), 3)}×, worst {F(worst.TrainRatio, 3)}× ({worst.Model} {worst.Method}), " +
                          $"{rows.Count(r => r.TrainRatio <= 0.8)} of {rows.Count} at or below 0.8×.");
            if (plainRows.Count > 0)
            {
                var plainWorst = plainRows.MaxBy(r => r.PlainRatio!.Value)!;
                md.AppendLine($"- At most 1.05× the plain TorchSharp loop: {Met(plainWorst.PlainRatio <= 1.05)}; worst {F(plainWorst.PlainRatio, 3)}× " +
                              $"({plainWorst.Model} {plainWorst.Method}), geometric mean {F(GeoMean(plainRows.Select(r => r.PlainRatio!.Value)), 3)}×.");
            }
            md.AppendLine($"- Peak resident memory at most 0.7× PyTorch's, linear probing included: {Met(memWorst.MemoryRatio <= 0.7)}; worst " +
                          $"{F(memWorst.MemoryRatio, 3)}× ({memWorst.Model} {memWorst.Method}).");
            md.AppendLine($"- Data wait under 2 % of the training loop: {Met(rows.Max(r => r.Peft.DataWaitShare ?? 0) < 0.02)}; largest " +
                          $"{100 * rows.Max(r => r.Peft.DataWaitShare ?? 0):F2} %.");
            if (vitB.Count > 0)
            {
                var best = vitB.MaxBy(r => r.PeftTrainGflops)!;
                md.AppendLine($"- A ViT-B step at 80 % or more of the GEMM peak: {Met(vitB.Any(r => r.PeftTrainGflops >= 0.8 * c.GemmPeakGflops))}; best " +
                              $"{100 * best.PeftTrainGflops / c.GemmPeakGflops:F0} % ({best.Method}), " +
                              string.Join(", ", vitB.Select(r => $"{r.Method} {100 * r.PeftTrainGflops / c.GemmPeakGflops:F0} %")) + ".");
            }
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
        }
        md.AppendLine();
        md.AppendLine("![training throughput, Peft, PyTorch and plain TorchSharp](speed.svg)");
        return md.ToString();
    }

    /// <summary>The CPU's model name and widest vector extension, from /proc/cpuinfo.</summary>
    public static string CpuName()
    {
        const string cpuinfo = "/proc/cpuinfo";
        if (!File.Exists(cpuinfo)) return "an unknown CPU";
        var lines = File.ReadLines(cpuinfo).ToList();
        var name = lines.FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "an unknown CPU";
        var flags = lines.FirstOrDefault(l => l.StartsWith("flags", StringComparison.Ordinal))?.Split(' ').ToHashSet() ?? [];
        var vector = flags.Contains("avx512f") ? "AVX-512" + (flags.Contains("avx512_bf16") ? " with BF16" : "") : flags.Contains("avx2") ? "AVX2" : "no AVX2";
        return $"{name} ({vector})";
    }

    private static double GeoMean(IEnumerable<double> values) => Math.Exp(values.ToList().Average(Math.Log));

    /// <summary>Bars per model and method: Peft's, tuned PyTorch's and (where measured) the plain loop's training images/s.</summary>
    public static string Svg(IReadOnlyList<SpeedRow> rows, int batch)
    {
        const int left = 170, bar = 8, group = 32, top = 40, width = 520;
        var height = top + rows.Count * group + 50;
        var max = rows.Count == 0 ? 1 : rows.Max(r => Math.Max(r.Peft.TrainImagesPerSecond, Math.Max(r.Torch.TrainImagesPerSecond, r.Plain?.TrainImagesPerSecond ?? 0)));
        var colours = new[] { ("#1f77b4", "Peft"), ("#ff7f0e", "PyTorch eager (tuned BLAS)"), ("#2ca02c", "plain TorchSharp") };
        var svg = new StringBuilder();
        svg.AppendLine($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{left + width + 140}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.AppendLine($"<rect width=\"{left + width + 140}\" height=\"{height}\" fill=\"white\"/>");
        svg.AppendLine($"<text x=\"{left}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">Training images/s, batch {batch} (longer is faster)</text>");
        for (var i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            var y = top + i * group;
            svg.AppendLine($"<text x=\"{left - 8}\" y=\"{y + 15}\" text-anchor=\"end\">{r.Model} {r.Method}</text>");
            double?[] values = [r.Peft.TrainImagesPerSecond, r.Torch.TrainImagesPerSecond, r.Plain?.TrainImagesPerSecond];
            for (var k = 0; k < values.Length; k++)
                if (values[k] is { } v)
                    svg.AppendLine($"<rect x=\"{left}\" y=\"{y + k * (bar + 1)}\" width=\"{F(width * v / max, 1)}\" height=\"{bar}\" fill=\"{colours[k].Item1}\"/>");
            svg.AppendLine($"<text x=\"{F(left + width * values.Max(v => v ?? 0) / max + 6, 1)}\" y=\"{y + 15}\">×{F(r.TrainRatio, 3)} PyTorch's step time</text>");
        }
        for (var k = 0; k < colours.Length; k++)
            svg.AppendLine($"<rect x=\"{left + 190 * k}\" y=\"{height - 25}\" width=\"12\" height=\"10\" fill=\"{colours[k].Item1}\"/>" +
                           $"<text x=\"{left + 190 * k + 16}\" y=\"{height - 16}\">{colours[k].Item2}</text>");
        svg.AppendLine("</svg>");
        return svg.ToString();
    }
}
