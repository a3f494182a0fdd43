using System.Runtime.InteropServices;
using System.Text;

namespace Peft.Engine;

/// <summary>One CUDA device as the driver describes it.</summary>
public sealed record CudaDeviceInfo(int Index, string Name, long TotalMemoryBytes, int ComputeMajor, int ComputeMinor)
{
    public override string ToString() =>
        $"cuda:{Index} {Name}, {TotalMemoryBytes / (1024.0 * 1024 * 1024):F1} GiB, compute capability {ComputeMajor}.{ComputeMinor}";
}

/// <summary>
/// The CUDA devices of this machine, asked of the NVIDIA driver's own C API (libcuda, which every CUDA install has):
/// TorchSharp counts devices but does not name them. Independent of the libtorch build, so `peft info` can say that a
/// GPU exists but the CPU build cannot use it.
/// </summary>
public static class CudaDevices
{
    private const int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;

    private static string Library => OperatingSystem.IsWindows() ? "nvcuda.dll" : "libcuda.so.1";

    /// <summary>The devices, or why there are none (no driver, driver error, no device).</summary>
    public static (IReadOnlyList<CudaDeviceInfo> Devices, string? Reason) List()
    {
        if (OperatingSystem.IsMacOS()) return ([], "CUDA does not exist on macOS");
        if (!NativeLibrary.TryLoad(Library, out var driver)) return ([], $"no NVIDIA driver ({Library} not found)");
        try
        {
            var init = Function<Init>(driver, "cuInit");
            var count = Function<GetCount>(driver, "cuDeviceGetCount");
            var get = Function<GetDevice>(driver, "cuDeviceGet");
            var name = Function<GetName>(driver, "cuDeviceGetName");
            var memory = Function<TotalMemory>(driver, "cuDeviceTotalMem_v2");
            var attribute = Function<GetAttribute>(driver, "cuDeviceGetAttribute");
            if (init(0) is var r and not 0) return ([], $"the NVIDIA driver failed to initialise (CUresult {r})");
            if (count(out var n) is var c and not 0) return ([], $"the NVIDIA driver cannot count devices (CUresult {c})");
            if (n == 0) return ([], "the NVIDIA driver reports no device");
            var devices = new List<CudaDeviceInfo>();
            var buffer = new byte[256];
            for (var i = 0; i < n; i++)
            {
                if (get(out var device, i) != 0) continue;
                name(buffer, buffer.Length, device);
                memory(out var bytes, device);
                attribute(out var major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device);
                attribute(out var minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device);
                devices.Add(new CudaDeviceInfo(i, Encoding.ASCII.GetString(buffer).TrimEnd('\0'), (long)bytes, major, minor));
            }
            return (devices, null);
        }
        catch (EntryPointNotFoundException e)
        {
            return ([], $"the NVIDIA driver lacks {e.Message}");
        }
    }

    private static T Function<T>(nint library, string name) where T : Delegate =>
        Marshal.GetDelegateForFunctionPointer<T>(NativeLibrary.GetExport(library, name));

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int Init(uint flags);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GetCount(out int count);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GetDevice(out int device, int ordinal);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GetName(byte[] name, int length, int device);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int TotalMemory(out nuint bytes, int device);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)] private delegate int GetAttribute(out int value, int attribute, int device);
}
