using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Peft.Torch;

/// <summary>P/Invoke surface of the native shim (abstractions/Peft.Torch/native).</summary>
internal static unsafe partial class Native
{
    internal const string Library = "peft_torch";
    internal const string FileName = "libpeft_torch.so";

    [LibraryImport(Library)] internal static partial nint peft_last_error();
    [LibraryImport(Library)] internal static partial nint peft_torch_version();
    [LibraryImport(Library)] internal static partial nint peft_build_config();
    [LibraryImport(Library)] internal static partial nint peft_host_allocator();
    [LibraryImport(Library)] internal static partial void peft_host_allocator_stats(long* values);
    [LibraryImport(Library)] internal static partial void peft_host_allocator_trim();
    [LibraryImport(Library)] internal static partial int peft_set_num_threads(int n);
    [LibraryImport(Library)] internal static partial int peft_get_num_threads();
    [LibraryImport(Library)] internal static partial int peft_manual_seed(ulong seed);
    [LibraryImport(Library)] internal static partial int peft_cuda_device_count();
    [LibraryImport(Library)] internal static partial int peft_grad_enabled();
    [LibraryImport(Library)] internal static partial int peft_set_grad_enabled(int enabled);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint peft_op_find(string name, string overload);
    [LibraryImport(Library)] internal static partial nint peft_op_schema(nint op);
    [LibraryImport(Library)]
    internal static partial int peft_op_call(nint op, NativeArg* args, int nArgs, NativeRet* outs, int maxOuts, int* nOuts);

    [LibraryImport(Library)] internal static partial void peft_tensor_free(nint t);
    [LibraryImport(Library)] internal static partial nint peft_tensor_alias(nint t);
    [LibraryImport(Library)]
    internal static partial nint peft_tensor_from_data(void* data, long nbytes, long* shape, int ndim, int dtype, int deviceType, int deviceIndex);
    [LibraryImport(Library)] internal static partial int peft_tensor_copy_to(nint t, void* dst, long nbytes);
    [LibraryImport(Library)]
    internal static partial int peft_tensor_info(nint t, int* dtype, int* ndim, long* shape, int* deviceType, int* deviceIndex, int* requiresGrad);
    [LibraryImport(Library)] internal static partial int peft_tensor_set_requires_grad(nint t, int value);
    [LibraryImport(Library)] internal static partial int peft_tensor_requires_grad(nint t);
    [LibraryImport(Library)] internal static partial int peft_tensor_is_leaf(nint t);
    [LibraryImport(Library)] internal static partial nint peft_tensor_data_ptr(nint t);
    [LibraryImport(Library)] internal static partial int peft_tensor_backward(nint t, nint grad, int retainGraph);
    [LibraryImport(Library)] internal static partial int peft_tensor_grad(nint t, nint* grad);
    [LibraryImport(Library)] internal static partial int peft_tensor_set_grad(nint t, nint grad);
    [LibraryImport(Library)] internal static partial nint peft_rng_get_state();
    [LibraryImport(Library)] internal static partial int peft_rng_set_state(nint state);

    [LibraryImport(Library)] internal static partial double peft_bench_matmul(long m, long k, long n, int warmup, int iters);
    [LibraryImport(Library)] internal static partial double peft_bench_linear(long batch, long tokens, long inFeatures, long outFeatures, int warmup, int iters);
    [LibraryImport(Library)] internal static partial double peft_bench_tiny_add(int warmup, int iters);

    /// <summary>Throws the thread's last native error when <paramref name="status"/> is non-zero.</summary>
    internal static void Check(int status)
    {
        if (status != 0) throw LastError();
    }

    internal static nint Check(nint handle)
    {
        if (handle == 0) throw LastError();
        return handle;
    }

    internal static TorchException LastError() =>
        new(Marshal.PtrToStringUTF8(peft_last_error()) ?? "unknown native error");

    internal static string String(nint utf8) => Marshal.PtrToStringUTF8(utf8) ?? "";

    // A library module initializer is the one place that runs before any P/Invoke of this assembly.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void InstallResolver() =>
        NativeLibrary.SetDllImportResolver(typeof(Native).Assembly, Resolve);

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name == Library ? NativeLoader.Load() : 0;
}

/// <summary>
/// Finds and loads libpeft_torch.so. Probes, in order: $PEFT_TORCH_NATIVE, the application folder,
/// this assembly's folder, and artifacts/native in any parent folder (a source checkout). When
/// nothing loads, the error lists every path probed, why each failed, and how to build the shim.
/// </summary>
internal static class NativeLoader
{
    private static readonly Lazy<nint> s_handle = new(LoadCore, LazyThreadSafetyMode.ExecutionAndPublication);

    internal static nint Load() => s_handle.Value;

    internal static IEnumerable<string> Candidates()
    {
        var env = Environment.GetEnvironmentVariable("PEFT_TORCH_NATIVE");
        if (!string.IsNullOrEmpty(env)) yield return env;
        yield return Path.Combine(AppContext.BaseDirectory, Native.FileName);
        var assemblyDir = Path.GetDirectoryName(typeof(Native).Assembly.Location);
        if (!string.IsNullOrEmpty(assemblyDir)) yield return Path.Combine(assemblyDir, Native.FileName);
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            yield return Path.Combine(dir.FullName, "artifacts", "native", Native.FileName);
    }

    private static nint LoadCore()
    {
        var failures = new List<string>();
        foreach (var path in Candidates().Distinct())
        {
            if (!File.Exists(path)) { failures.Add($"  {path}: not found"); continue; }
            try { return NativeLibrary.Load(path); }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                failures.Add($"  {path}: {e.Message}");
            }
        }
        throw new DllNotFoundException(
            $"The Peft native shim ({Native.FileName}) could not be loaded. Paths probed:{Environment.NewLine}" +
            string.Join(Environment.NewLine, failures) + Environment.NewLine +
            "Build it with `dotnet build abstractions/Peft.Torch` (or `cmake -S abstractions/Peft.Torch/native -B artifacts/native && " +
            "cmake --build artifacts/native`); it needs libtorch (`apt-get install libtorch-dev libopenblas0-pthread " +
            "libturbojpeg0-dev libspng-dev cmake g++`, or Torch_DIR pointing at any libtorch). " +
            "Set PEFT_TORCH_NATIVE to load it from elsewhere.");
    }
}
