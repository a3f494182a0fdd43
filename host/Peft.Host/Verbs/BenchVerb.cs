using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Torch;
using Spectre.Console;

namespace Peft.Host.Verbs;

/// <summary>
/// `peft bench`: the binding's per-call overhead (µs) and GEMM/linear GFLOP/s next to the same ops in
/// a C++ loop on libtorch. Targets: overhead under 5 µs per op, throughput ratio at least 0.97.
/// Bench:Output=FILE also writes the figures as JSON.
/// </summary>
public sealed class BenchVerb(IConfiguration configuration) : IVerb
{
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var results = new List<EngineProbe.Comparison>
        {
            EngineProbe.TinyOp(iters: 200_000),
        };
        cancellationToken.ThrowIfCancellationRequested();
        results.Add(EngineProbe.Matmul(1024, 1024, 1024, iters: 30));
        cancellationToken.ThrowIfCancellationRequested();
        results.Add(EngineProbe.Linear(64, 197, 768, 2304, iters: 5));

        var overhead = results[0].BindingMicrosPerCall - results[0].NativeMicrosPerCall;
        var table = new Table().AddColumns("Benchmark", "Binding", "C++ loop", "Ratio");
        table.AddRow(results[0].Name, $"{results[0].BindingMicrosPerCall:F2} µs", $"{results[0].NativeMicrosPerCall:F2} µs", $"+{overhead:F2} µs/op");
        foreach (var r in results.Skip(1))
            table.AddRow(r.Name, $"{r.BindingGflops:F1} GFLOP/s", $"{r.NativeGflops:F1} GFLOP/s", r.Ratio.ToString("F3", CultureInfo.InvariantCulture));
        AnsiConsole.MarkupLine($"libtorch {torch.__version__}, {torch.get_num_threads()} threads, BLAS: {Markup.Escape(EngineDiagnostics.BlasName())}");
        AnsiConsole.Write(table);

        if (configuration["Bench:Output"] is { Length: > 0 } output)
        {
            var json = JsonSerializer.Serialize(new
            {
                libtorch = torch.__version__,
                threads = torch.get_num_threads(),
                overheadMicrosPerOp = overhead,
                results = results.Select(r => new
                {
                    r.Name, r.BindingSeconds, r.NativeSeconds, r.Iterations, r.BindingGflops, r.NativeGflops, r.Ratio,
                    r.BindingMicrosPerCall, r.NativeMicrosPerCall,
                }),
            }, new JsonSerializerOptions { WriteIndented = true });
            File.WriteAllText(output, json);
        }
        return Task.FromResult(0);
    }
}
