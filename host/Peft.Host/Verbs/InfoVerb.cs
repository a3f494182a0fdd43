using System.Globalization;
using Peft.Engine;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Host.Verbs;

/// <summary>`peft info`: the engine's versions and libraries, threads, devices, and how fast a GEMM runs here.</summary>
public sealed class InfoVerb : IVerb
{
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var gemm = TorchEngine.MeasureGemmGflops();
        var (mkl, mklVersion, oneDnn, openMp) = TorchEngine.CpuLibraries();
        var table = new Table().AddColumn("Engine").AddColumn("Value");
        table.AddRow("TorchSharp", TorchEngine.TorchSharpVersion);
        table.AddRow("libtorch", TorchEngine.LibTorchVersion);
        table.AddRow("threads", $"{get_num_threads()} of {Environment.ProcessorCount} cores");
        table.AddRow("MKL", Markup.Escape(mkl ? mklVersion ?? "yes" : "no"));
        table.AddRow("oneDNN (MKL-DNN)", oneDnn ? "yes" : "no");
        table.AddRow("OpenMP", openMp ? "yes" : "no");
        table.AddRow("host memory", Markup.Escape(TorchEngine.HostMemory));
        var (gpus, reason) = CudaDevices.List();
        var usable = TorchEngine.CudaDeviceCount();
        table.AddRow("libtorch build", TorchEngine.IsCudaBuild ? "CUDA" : "CPU only (dotnet build -p:TorchBackend=cuda for CUDA)");
        table.AddRow("CUDA devices", gpus.Count == 0
            ? $"none: {Markup.Escape(reason ?? "")}"
            : Markup.Escape(string.Join("\n", gpus)) + (usable == gpus.Count ? "" : $"\n(libtorch can use {usable}: {(TorchEngine.IsCudaBuild ? "see the driver" : "this is the CPU build")})"));
        table.AddRow("GEMM 1024² float32", $"{gemm:F1} GFLOP/s");
        AnsiConsole.Write(table);
        return Task.FromResult(0);
    }
}
