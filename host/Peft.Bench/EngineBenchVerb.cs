using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Peft.Engine;
using Peft.Host.Verbs;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Bench;

/// <summary>
/// `peft-bench engine`: the engine's per-operator cost through TorchSharp (µs) and GEMM / ViT-B linear GFLOP/s.
/// Bench:Output=FILE also writes the figures as JSON.
/// </summary>
public sealed class EngineBenchVerb(IConfiguration configuration) : IVerb
{
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var results = new List<EngineProbe.Timing> { EngineProbe.TinyOp(iters: 200_000) };
        cancellationToken.ThrowIfCancellationRequested();
        results.Add(EngineProbe.Matmul(1024, 1024, 1024, iters: 30));
        cancellationToken.ThrowIfCancellationRequested();
        results.Add(EngineProbe.Linear(64, 197, 768, 2304, iters: 5));

        var table = new Table().AddColumns("Benchmark", "Result");
        table.AddRow(results[0].Name, $"{results[0].MicrosPerCall:F2} µs per call");
        foreach (var r in results.Skip(1)) table.AddRow(r.Name, $"{r.Gflops:F1} GFLOP/s");
        AnsiConsole.MarkupLine($"TorchSharp {TorchEngine.TorchSharpVersion}, libtorch {TorchEngine.LibTorchVersion}, {get_num_threads()} threads");
        AnsiConsole.Write(table);

        if (configuration["Bench:Output"] is { Length: > 0 } output)
        {
            var json = JsonSerializer.Serialize(new
            {
                torchsharp = TorchEngine.TorchSharpVersion,
                libtorch = TorchEngine.LibTorchVersion,
                threads = get_num_threads(),
                microsPerOp = results[0].MicrosPerCall,
                results = results.Select(r => new { r.Name, r.Seconds, r.Iterations, r.Gflops, r.MicrosPerCall }),
            }, new JsonSerializerOptions { WriteIndented = true });
            File.WriteAllText(output, json);
        }
        return Task.FromResult(0);
    }
}
