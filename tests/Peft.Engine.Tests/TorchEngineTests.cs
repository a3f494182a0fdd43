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
        Assert.Equal("glibc malloc, mmap threshold 32 MiB (4 MiB while the backbone runs without autograd), trim threshold 1 GiB",
            TorchEngine.HostMemory);

        // glibc counts the bytes of the chunks it mmaps (mallinfo2().hblkhd). Above its largest threshold (32 MiB) a
        // tensor's storage is always mmapped: this control proves the counter sees libtorch's allocations.
        Assert.True(Mapped(40), "no 40 MiB tensor was mmapped");
        // Below it a 24 MiB tensor comes from the heap. With glibc's defaults (128 KiB, raised only by frees of mmapped
        // chunks) it would be mmapped, and page-faulted in afresh every step.
        Assert.False(Mapped(24), "a 24 MiB tensor was mmapped");
    }

    [Fact]
    public void A_frozen_forward_maps_blocks_of_4_MiB_and_more_until_its_last_scope_ends()
    {
        if (!OperatingSystem.IsLinux()) return;
        TorchEngine.EnsureLoaded();
        // 28 MiB: below the training threshold (32 MiB), above the frozen forward's (4 MiB).
        if (MallocTunedByEnvironment())
        {
            using (TorchEngine.HostMemoryForFrozenForward()) Assert.False(Mapped(28), "the user's malloc settings were changed");
            return;
        }
        Assert.False(Mapped(28), "a 28 MiB tensor was mmapped before any frozen forward");
        var outer = TorchEngine.HostMemoryForFrozenForward();
        try
        {
            Assert.True(Mapped(28), "a 28 MiB tensor came from the heap in a frozen forward");
            Assert.False(Mapped(2), "a 2 MiB tensor was mmapped in a frozen forward");
            using (TorchEngine.HostMemoryForFrozenForward()) Assert.True(Mapped(28), "a 28 MiB tensor came from the heap in a nested frozen forward");
            Assert.True(Mapped(28), "the inner scope's end restored the training threshold while the outer one runs");
        }
        finally
        {
            outer.Dispose();
        }
        outer.Dispose();                                   // a second Dispose does not count twice
        Assert.False(Mapped(28), "a 28 MiB tensor is still mmapped after the frozen forward ended");
        using (TorchEngine.HostMemoryForFrozenForward()) Assert.True(Mapped(28), "a later frozen forward maps blocks again");
        Assert.False(Mapped(28), "the threshold was not restored after the later frozen forward");
    }

    /// <summary>
    /// Whether glibc mmaps float tensors of <paramref name="mib"/> MiB (mallinfo2().hblkhd). It mmaps only what its heap
    /// cannot serve from free chunks, so enough are held at once that their bytes pass every free byte of the heap.
    /// </summary>
    private static bool Mapped(long mib)
    {
        var size = mib << 20;
        var count = (long)MallInfo().FordBlks / size + 2;
        var before = (long)MallInfo().HBlkHd;
        var held = new List<Tensor>();
        try
        {
            for (var i = 0; i < count; i++) held.Add(empty(size / 4));
            return (long)MallInfo().HBlkHd - before >= size;
        }
        finally
        {
            foreach (var t in held) t.Dispose();
        }
    }
}
