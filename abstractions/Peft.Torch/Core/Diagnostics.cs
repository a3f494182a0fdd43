using System.Diagnostics;

namespace Peft.Torch;

/// <summary>Engine self-checks: what libtorch is linked with, and reference timings taken in C++.</summary>
public static class EngineDiagnostics
{
    /// <summary>BLAS/LAPACK/OpenMP shared objects mapped into this process (from /proc/self/maps).</summary>
    public static IReadOnlyList<string> LoadedMathLibraries()
    {
        _ = torch.__version__; // make sure libtorch is loaded
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return [];
        return File.ReadLines(maps)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "")
            .Where(p => p.StartsWith('/') && (p.Contains("blas", StringComparison.OrdinalIgnoreCase)
                || p.Contains("lapack", StringComparison.OrdinalIgnoreCase) || p.Contains("gomp", StringComparison.Ordinal)
                || p.Contains("mkl", StringComparison.OrdinalIgnoreCase)))
            .Distinct()
            .Select(p => File.Exists(p) && new FileInfo(p).LinkTarget is { } target ? $"{p} -> {target}" : p)
            .ToList();
    }

    /// <summary>A one-word name for the BLAS in use: OpenBLAS, MKL, or the reference BLAS (slow).</summary>
    public static string BlasName()
    {
        var libs = LoadedMathLibraries();
        if (libs.Any(l => l.Contains("openblas", StringComparison.OrdinalIgnoreCase))) return "OpenBLAS";
        if (libs.Any(l => l.Contains("mkl", StringComparison.OrdinalIgnoreCase))) return "MKL";
        if (libs.Any(l => l.Contains("blas", StringComparison.OrdinalIgnoreCase)))
            return "reference BLAS (slow: apt-get install libopenblas0-pthread)";
        return "none found";
    }

    /// <summary>
    /// Which allocator CPU tensors come from: by default the shim's caching allocator, which keeps freed blocks of
    /// 1 MiB and more for the next request of that size instead of returning them to the kernel (PEFT_HOST_ALLOCATOR=system
    /// keeps libtorch's own).
    /// </summary>
    public static string HostAllocator() => Native.String(Native.peft_host_allocator());

    /// <summary>The caching allocator's counters (all zero when it is not installed).</summary>
    public static unsafe HostAllocatorStats HostAllocatorCounters()
    {
        var v = stackalloc long[6];
        Native.peft_host_allocator_stats(v);
        return new HostAllocatorStats(v[0], v[1], v[2], v[3], v[4], v[5]);
    }

    /// <summary>
    /// Returns every cached block to malloc (live tensors are untouched) and restarts the peak of lent bytes, which
    /// bounds the cache, from the bytes lent now.
    /// </summary>
    public static void TrimHostCache() => Native.peft_host_allocator_trim();

    /// <summary>Seconds for <paramref name="iters"/> float32 matmuls (m×k)·(k×n) in a C++ loop.</summary>
    public static double NativeMatmulSeconds(long m, long k, long n, int warmup, int iters) =>
        CheckTiming(Native.peft_bench_matmul(m, k, n, warmup, iters));

    /// <summary>Seconds for <paramref name="iters"/> linear layers (batch, tokens, in) → out in a C++ loop.</summary>
    public static double NativeLinearSeconds(long batch, long tokens, long inFeatures, long outFeatures, int warmup, int iters) =>
        CheckTiming(Native.peft_bench_linear(batch, tokens, inFeatures, outFeatures, warmup, iters));

    /// <summary>Seconds for <paramref name="iters"/> one-element adds in a C++ loop (libtorch's own per-op floor).</summary>
    public static double NativeTinyAddSeconds(int warmup, int iters) => CheckTiming(Native.peft_bench_tiny_add(warmup, iters));

    private static double CheckTiming(double seconds) => seconds < 0 ? throw Native.LastError() : seconds;

    /// <summary>Times <paramref name="body"/> after <paramref name="warmup"/> untimed calls.</summary>
    public static double TimeLoop(int warmup, int iters, Action body)
    {
        for (var k = 0; k < warmup; k++) body();
        var sw = Stopwatch.StartNew();
        for (var k = 0; k < iters; k++) body();
        return sw.Elapsed.TotalSeconds;
    }
}

/// <summary>
/// The caching CPU allocator's counters, over blocks of 1 MiB and more: bytes lent out now, bytes kept for reuse,
/// the peak of lent bytes, requests served from the cache and not, and cached bytes handed back to malloc.
/// </summary>
public readonly record struct HostAllocatorStats(long LiveBytes, long CachedBytes, long PeakLiveBytes, long Hits, long Misses, long ReleasedBytes);
