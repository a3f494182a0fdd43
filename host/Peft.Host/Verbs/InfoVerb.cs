using Peft.Torch;
using Spectre.Console;

namespace Peft.Host.Verbs;

/// <summary>`peft info`: what the engine is linked with and how fast a GEMM runs here.</summary>
public sealed class InfoVerb : IVerb
{
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var gemm = EngineProbe.Matmul(1024, 1024, 1024, iters: 20, rounds: 3);
        var table = new Table().AddColumn("Engine").AddColumn("Value");
        table.AddRow("libtorch", torch.__version__);
        table.AddRow("threads", torch.get_num_threads().ToString(System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow("cores", Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow("BLAS", Markup.Escape(EngineDiagnostics.BlasName()));
        table.AddRow("host memory", Markup.Escape(EngineDiagnostics.HostAllocator()));
        table.AddRow("CUDA devices", torch.cuda.device_count().ToString(System.Globalization.CultureInfo.InvariantCulture));
        table.AddRow("GEMM 1024² float32", $"{gemm.BindingGflops:F1} GFLOP/s (C++ loop {gemm.NativeGflops:F1})");
        AnsiConsole.Write(table);
        foreach (var lib in EngineDiagnostics.LoadedMathLibraries())
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape(lib)}[/]");
        return Task.FromResult(0);
    }
}
