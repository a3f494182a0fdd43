using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine;

/// <summary>
/// TorchSharp as the product runs it: the native libraries loaded with the loader's real error when they cannot be,
/// glibc's heap kept from returning large blocks to the kernel between steps, and a description of the engine for
/// <c>peft info</c>.
/// </summary>
public static class TorchEngine
{
    private static readonly Lock Gate = new();
    private static bool _loaded;

    /// <summary>
    /// Loads libtorch and TorchSharp's native library from the application folder before TorchSharp touches them.
    /// TorchSharp probes with NativeLibrary.TryLoad, which drops the dynamic loader's message, reports that the
    /// application "doesn't contain a reference to libtorch-cpu-linux-x64" whatever the cause, and then copies the
    /// whole NuGet package (about 500 MB) beside the application to retry. Loading by path first turns a failure into
    /// the loader's own reason (a missing GLIBCXX version, a missing library) and stops there.
    /// </summary>
    /// <exception cref="TorchLoadException">A native library could not be loaded; the message carries the loader's reason.</exception>
    public static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_loaded) return;
            ApplyHostMemorySettings();
            var folder = NativeFolder();
            foreach (var name in NativeLibraries())
            {
                var path = Path.Combine(folder, name);
                if (!File.Exists(path))
                    throw new TorchLoadException($"{path} is missing: the libtorch backend package was not copied into the application folder. " +
                        "Rebuild with `dotnet build` (the CPU backend is the default; -p:TorchBackend=cuda selects CUDA).");
                try
                {
                    NativeLibrary.Load(path);
                }
                catch (DllNotFoundException e)
                {
                    throw new TorchLoadException($"cannot load {path}: {e.Message}" + Hint(e.Message), e);
                }
            }
            _loaded = true;
        }
    }

    private static string Hint(string message) => message.Contains("GLIBCXX_", StringComparison.Ordinal)
        ? " This machine's libstdc++ is older than the one TorchSharp was built with; the build marks TorchSharp's one "
          + "GLIBCXX_3.4.32 requirement weak in its output (build/Peft.Engine.targets). Rebuild so that step runs, or install a newer libstdc++."
        : "";

    // The folder holding TorchSharp's native files: flattened into the application folder by a RID-specific build,
    // or under runtimes/<rid>/native for a portable one.
    private static string NativeFolder()
    {
        var baseDir = Path.GetDirectoryName(typeof(torch).Assembly.Location) ?? AppContext.BaseDirectory;
        var nativeName = NativeLibraryFile("LibTorchSharp");
        if (File.Exists(Path.Combine(baseDir, nativeName))) return baseDir;
        var portable = Path.Combine(baseDir, "runtimes", RuntimeInformation.RuntimeIdentifier, "native");
        return Directory.Exists(portable) ? portable : baseDir;
    }

    // libtorch first (TorchSharp's library links against it), then TorchSharp's own.
    private static IEnumerable<string> NativeLibraries()
    {
        yield return NativeLibraryFile("torch_cpu");
        yield return NativeLibraryFile("LibTorchSharp");
    }

    private static string NativeLibraryFile(string name) =>
        OperatingSystem.IsWindows() ? name + ".dll" : OperatingSystem.IsMacOS() ? "lib" + name + ".dylib" : "lib" + name + ".so";

    // ---- host memory ------------------------------------------------------------------------------------------

    /// <summary>What <see cref="ApplyHostMemorySettings"/> did, for <c>peft info</c> and the logs.</summary>
    public static string HostMemory { get; private set; } = "glibc malloc defaults";

    private const int M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3;

    [DllImport("libc", EntryPoint = "mallopt")]
    private static extern int Mallopt(int parameter, int value);

    /// <summary>
    /// libtorch's CPU allocator is plain malloc/free, and glibc returns every block above its mmap threshold (128 KiB,
    /// growing only to 32 MiB) to the kernel when it is freed, so each training step page-faults its activations in
    /// afresh. Raising the mmap threshold to glibc's maximum and the trim threshold to 1 GiB keeps freed activation
    /// blocks in the heap for the next step. Left alone when the user set MALLOC_* variables or PEFT_HOST_ALLOCATOR=system.
    /// </summary>
    private static void ApplyHostMemorySettings()
    {
        if (!OperatingSystem.IsLinux()) return;
        if (Environment.GetEnvironmentVariable("PEFT_HOST_ALLOCATOR") is "system")
        {
            HostMemory = "glibc malloc defaults (PEFT_HOST_ALLOCATOR=system)";
            return;
        }
        if (Environment.GetEnvironmentVariables().Keys.Cast<string>().Any(k => k.StartsWith("MALLOC_", StringComparison.Ordinal)
                || k.StartsWith("GLIBC_TUNABLES", StringComparison.Ordinal)))
        {
            HostMemory = "glibc malloc as the MALLOC_*/GLIBC_TUNABLES environment sets it";
            return;
        }
        try
        {
            // glibc refuses an mmap threshold above HEAP_MAX_SIZE / 2 (32 MiB on 64-bit): take the largest it accepts.
            var mmap = 32 << 20;
            while (mmap > 1 << 20 && Mallopt(M_MMAP_THRESHOLD, mmap) == 0) mmap >>= 1;
            var trim = Mallopt(M_TRIM_THRESHOLD, 1 << 30) != 0;
            _mmapThreshold = mmap;
            HostMemory = $"glibc malloc, mmap threshold {mmap >> 20} MiB ({FrozenForwardMmapThreshold >> 20} MiB while the backbone runs " +
                         $"without autograd), trim threshold {(trim ? "1 GiB" : "default")}";
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            HostMemory = "malloc defaults (no glibc mallopt)";
        }
    }

    /// <summary>The mmap threshold <see cref="ApplyHostMemorySettings"/> set; 0 when it left glibc's settings alone.</summary>
    private static int _mmapThreshold;

    private static readonly Lock FrozenForwardLock = new();
    private static int _frozenForwardRuns;

    /// <summary>The mmap threshold while a frozen forward runs (<see cref="HostMemoryForFrozenForward"/>).</summary>
    public const int FrozenForwardMmapThreshold = 4 << 20;

    /// <summary>
    /// Host memory for a run whose backbone forward needs no autograd (linear probing: the method's
    /// <c>FrozenFeatures</c>), until the returned scope is disposed. Such a pass frees every activation as soon as the
    /// next exists, in sizes that differ from block to block, and a heap that keeps freed blocks (the high mmap threshold
    /// that training needs) fragments: linear probing on ViT-S/16 at batch 32 left 400 MiB of free heap resident after 8
    /// steps, against 150 MiB in use. Blocks of 4 MiB and more are then mapped and unmapped instead, as glibc does by
    /// default. Nothing changes when the settings were left to glibc (PEFT_HOST_ALLOCATOR=system, MALLOC_* set); nested
    /// and concurrent scopes keep the lower threshold until the last one ends.
    /// </summary>
    public static IDisposable HostMemoryForFrozenForward()
    {
        if (_mmapThreshold == 0) return FrozenForwardScope.None;
        lock (FrozenForwardLock)
            if (_frozenForwardRuns++ == 0) Mallopt(M_MMAP_THRESHOLD, FrozenForwardMmapThreshold);
        return new FrozenForwardScope();
    }

    private sealed class FrozenForwardScope : IDisposable
    {
        public static readonly IDisposable None = new NoScope();
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
            lock (FrozenForwardLock)
                if (--_frozenForwardRuns == 0) Mallopt(M_MMAP_THRESHOLD, _mmapThreshold);
        }

        private sealed class NoScope : IDisposable
        {
            public void Dispose() { }
        }
    }

    // ---- description ------------------------------------------------------------------------------------------

    [DllImport("torch_cpu", EntryPoint = "_ZN2at7Context6hasMKLEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static extern bool AtHasMkl();

    [DllImport("torch_cpu", EntryPoint = "_ZN2at7Context9hasMKLDNNEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static extern bool AtHasMklDnn();

    [DllImport("torch_cpu", EntryPoint = "_ZN2at7Context9hasOpenMPEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    private static extern bool AtHasOpenMp();

    [DllImport("torch_cpu", EntryPoint = "MKL_Get_Version_String")]
    private static extern void MklVersionString(byte[] buffer, int length);

    /// <summary>TorchSharp's version (the package's, not the assembly's file version).</summary>
    public static string TorchSharpVersion =>
        typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "?";

    /// <summary>libtorch's version as it reports itself.</summary>
    public static string LibTorchVersion
    {
        get
        {
            EnsureLoaded();
            return __version__;
        }
    }

    /// <summary>The CPU math libraries libtorch was built with (asked of libtorch itself).</summary>
    public static (bool Mkl, string? MklVersion, bool OneDnn, bool OpenMp) CpuLibraries()
    {
        EnsureLoaded();
        try
        {
            var mkl = AtHasMkl();
            string? version = null;
            if (mkl)
            {
                var buffer = new byte[256];
                MklVersionString(buffer, buffer.Length);
                version = Encoding.ASCII.GetString(buffer).TrimEnd('\0', ' ');
            }
            return (mkl, version, AtHasMklDnn(), AtHasOpenMp());
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return (false, null, false, false); // a libtorch build that does not export these
        }
    }

    // ---- devices ----------------------------------------------------------------------------------------------

    /// <summary>Whether the libtorch in the application folder is a CUDA build (it ships libtorch_cuda).</summary>
    public static bool IsCudaBuild => File.Exists(Path.Combine(NativeFolder(), NativeLibraryFile("torch_cuda")));

    /// <summary>CUDA devices visible to libtorch (0 with the CPU build or without a GPU).</summary>
    public static int CudaDeviceCount()
    {
        EnsureLoaded();
        return cuda.is_available() ? cuda.device_count() : 0;
    }

    /// <summary>
    /// The device a Run:Device value names, or why it cannot be used: <c>cpu</c>; <c>cuda</c> or <c>cuda:N</c>, which need
    /// the CUDA build of libtorch and that device; <c>auto</c>, the first CUDA device when there is one, else the CPU.
    /// </summary>
    public static (Device? Device, string? Problem) ResolveDevice(string name)
    {
        if (name == "cpu") return (CPU, null);
        var count = CudaDeviceCount();
        if (name == "auto") return (count > 0 ? new Device(DeviceType.CUDA, 0) : CPU, null);
        var index = name == "cuda" ? 0 : int.Parse(name.AsSpan(5), System.Globalization.CultureInfo.InvariantCulture);
        if (!IsCudaBuild)
            return (null, "this build links the CPU-only libtorch, which has no CUDA; build the CUDA one with " +
                          "`dotnet build -c Release -p:TorchBackend=cuda` (TorchSharp's libtorch-cuda-12.8 packages, from nuget.org)");
        if (count == 0) return (null, "the CUDA build of libtorch sees no CUDA device (no GPU, or no driver)");
        if (index >= count) return (null, $"there {(count == 1 ? "is 1 CUDA device" : $"are {count} CUDA devices")} (cuda:0{(count > 1 ? $"..cuda:{count - 1}" : "")})");
        return (new Device(DeviceType.CUDA, index), null);
    }

    /// <summary>float32 GEMM throughput of (n×n)·(n×n) on the CPU, counting a multiply-add as 2 FLOPs.</summary>
    public static double MeasureGemmGflops(int n = 1024, int warmup = 3, int iters = 20)
    {
        EnsureLoaded();
        using var scope = NewDisposeScope();
        var a = randn(n, n);
        var b = randn(n, n);
        for (var k = 0; k < warmup; k++) a.matmul(b).Dispose();
        var clock = Stopwatch.StartNew();
        for (var k = 0; k < iters; k++) a.matmul(b).Dispose();
        return 2.0 * n * n * n * iters / clock.Elapsed.TotalSeconds / 1e9;
    }
}

/// <summary>libtorch or TorchSharp's native library could not be loaded; the message says why.</summary>
public sealed class TorchLoadException(string message, Exception? inner = null) : Exception(message, inner);
