using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine.Tests;

/// <summary>The engine as the product runs it: TorchSharp 0.107 on libtorch 2.10, its CPU libraries, glibc's thresholds.</summary>
public class TorchEngineTests
{
    [Fact]
    public void EnsureLoaded_is_idempotent_and_libtorch_is_2_10()
    {
        TorchEngine.EnsureLoaded();
        var memory = TorchEngine.HostMemory;
        TorchEngine.EnsureLoaded();                       // a second call neither fails nor applies the settings again
        Assert.Equal(memory, TorchEngine.HostMemory);

        Assert.StartsWith("2.10.", TorchEngine.LibTorchVersion);
        Assert.StartsWith("0.107.", TorchEngine.TorchSharpVersion);
        // The libtorch that was loaded computes: a closed form, 1 + 2 + ... + 100.
        using var sum = arange(1, 101, ScalarType.Int64).sum();
        Assert.Equal(5050L, sum.item<long>());
    }

    [Fact]
    public void Cpu_libraries_are_mkl_onednn_and_openmp_on_linux_x64()
    {
        // TorchSharp's libtorch for linux-x64 is built with MKL, oneDNN and OpenMP; other platforms' builds differ.
        if (!(OperatingSystem.IsLinux() && RuntimeInformation.OSArchitecture == Architecture.X64)) return;
        var (mkl, mklVersion, oneDnn, openMp) = TorchEngine.CpuLibraries();
        Assert.True(mkl, "libtorch reports no MKL");
        Assert.NotNull(mklVersion);
        Assert.Contains("Math Kernel Library", mklVersion, StringComparison.Ordinal);   // "Intel(R) oneAPI Math Kernel Library Version ..."
        Assert.True(oneDnn, "libtorch reports no oneDNN (MKLDNN)");
        Assert.True(openMp, "libtorch reports no OpenMP");
    }

    [Fact]
    public void Gemm_throughput_is_a_positive_finite_number()
    {
        var gflops = TorchEngine.MeasureGemmGflops(n: 256, warmup: 1, iters: 5);
        Assert.True(double.IsFinite(gflops) && gflops > 0, $"{gflops} GFLOP/s");
    }

    // ---- glibc's thresholds ----------------------------------------------------------------------------

    [StructLayout(LayoutKind.Sequential)]
    private struct MallInfo2
    {
        public nuint Arena, OrdBlks, SmBlks, HBlks, HBlkHd, UsmBlks, FsmBlks, UordBlks, FordBlks, KeepCost;
    }

    [DllImport("libc", EntryPoint = "mallinfo2")]
    private static extern MallInfo2 MallInfo();

    private static bool MallocTunedByEnvironment() =>
        Environment.GetEnvironmentVariable("PEFT_HOST_ALLOCATOR") is "system"
        || Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Any(k => k.StartsWith("MALLOC_", StringComparison.Ordinal) || k.StartsWith("GLIBC_TUNABLES", StringComparison.Ordinal));

    [Fact]
    public void Host_memory_raises_glibcs_mmap_threshold_so_large_tensors_stay_in_the_heap()
    {
        if (!OperatingSystem.IsLinux()) return;                        // glibc's mallopt: Linux only
        TorchEngine.EnsureLoaded();
        if (MallocTunedByEnvironment())
        {
            // The user's settings win; EnsureLoaded leaves malloc alone and says so.
            Assert.Contains("glibc malloc", TorchEngine.HostMemory);
            return;
        }
        Assert.Equal("glibc malloc, mmap threshold 32 MiB, trim threshold 1 GiB", TorchEngine.HostMemory);

        // glibc counts the bytes of the chunks it mmaps (mallinfo2().hblkhd). Above its largest threshold (32 MiB) a
        // tensor's storage is always mmapped: this control proves the counter sees libtorch's allocations.
        const long MiB = 1 << 20;
        var before = (long)MallInfo().HBlkHd;
        using (var above = empty(40 * MiB / 4))
        {
            var mapped = (long)MallInfo().HBlkHd - before;
            Assert.True(mapped >= 40 * MiB, $"a 40 MiB tensor added {mapped / MiB} MiB of mmapped chunks");
        }

        // Below it a 24 MiB tensor comes from the heap. With glibc's defaults (128 KiB, raised only by frees of mmapped
        // chunks) it would be mmapped, and page-faulted in afresh every step.
        before = (long)MallInfo().HBlkHd;
        using (var below = empty(24 * MiB / 4))
        {
            var mapped = (long)MallInfo().HBlkHd - before;
            Assert.True(mapped < 24 * MiB, $"a 24 MiB tensor was mmapped ({mapped / MiB} MiB of mmapped chunks added)");
        }
    }
}
