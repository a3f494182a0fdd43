using System.Runtime.InteropServices;

namespace Peft.Torch;

/// <summary>The static facade, in PyTorch's (and TorchSharp's) vocabulary.</summary>
public static partial class torch
{
    public const ScalarType float32 = ScalarType.Float32, float16 = ScalarType.Float16, bfloat16 = ScalarType.BFloat16,
        float64 = ScalarType.Float64, int64 = ScalarType.Int64, int32 = ScalarType.Int32, uint8 = ScalarType.Byte,
        @bool = ScalarType.Bool;

    public static readonly Device CPU = Device.CPU;

    /// <summary>The version of the linked libtorch.</summary>
    public static string __version__ => Native.String(Native.peft_torch_version());

    /// <summary>libtorch's build configuration and parallel settings (at::show_config).</summary>
    public static string BuildConfig => Native.String(Native.peft_build_config());

    public static void manual_seed(ulong seed) => Native.Check(Native.peft_manual_seed(seed));

    public static void set_num_threads(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        Native.Check(Native.peft_set_num_threads(n));
    }

    public static int get_num_threads() => Native.peft_get_num_threads();

    /// <summary>Opens a scope that disposes the tensors created on this thread until it closes.</summary>
    public static DisposeScope NewDisposeScope() => new();

    public static bool is_grad_enabled() => Native.peft_grad_enabled() != 0;

    /// <summary>Disables gradient recording on this thread until disposed.</summary>
    public static IDisposable no_grad() => new GradMode(false);

    /// <summary>Enables gradient recording on this thread until disposed.</summary>
    public static IDisposable enable_grad() => new GradMode(true);

    private sealed class GradMode : IDisposable
    {
        private readonly int _previous;
        private bool _disposed;
        public GradMode(bool enabled) => _previous = Native.peft_set_grad_enabled(enabled ? 1 : 0);

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            Native.peft_set_grad_enabled(_previous);
        }
    }

    public static class cuda
    {
        public static int device_count() => Native.peft_cuda_device_count();
        public static bool is_available() => device_count() > 0;
    }

    /// <summary>The default CPU generator's state, for checkpoints.</summary>
    public static Tensor get_rng_state() => Tensor.FromHandle(Native.Check(Native.peft_rng_get_state()));

    public static void set_rng_state(Tensor state) => Native.Check(Native.peft_rng_set_state(state.Handle));

    // ---- creation ---------------------------------------------------------------------------

    private static unsafe Tensor Factory(Op op, long[] shape, ScalarType? dtype, Device? device, NativeArg first = default, bool withFirst = false)
    {
        fixed (long* p = shape)
        {
            var list = NativeArg.IntList(p, shape.Length);
            var dev = device is { } d ? NativeArg.Of(d) : NativeArg.None;
            return withFirst
                ? op.Call([list, first, NativeArg.Dtype(dtype), NativeArg.None, dev])
                : op.Call([list, NativeArg.Dtype(dtype), NativeArg.None, dev]);
        }
    }

    public static Tensor zeros(long[] shape, ScalarType? dtype = null, Device? device = null) => Factory(Ops.Zeros, shape, dtype, device);
    public static Tensor zeros(params long[] shape) => zeros(shape, null);
    public static Tensor ones(long[] shape, ScalarType? dtype = null, Device? device = null) => Factory(Ops.Ones, shape, dtype, device);
    public static Tensor ones(params long[] shape) => ones(shape, null);
    public static Tensor empty(long[] shape, ScalarType? dtype = null, Device? device = null) => Factory(Ops.Empty, shape, dtype, device);
    public static Tensor full(long[] shape, Scalar value, ScalarType? dtype = null, Device? device = null) =>
        Factory(Ops.Full, shape, dtype ?? float32, device, value, withFirst: true);
    /// <summary>Uniform on [0, 1).</summary>
    public static Tensor rand(long[] shape, ScalarType? dtype = null, Device? device = null) => Factory(Ops.Rand, shape, dtype, device);
    public static Tensor rand(params long[] shape) => rand(shape, null);
    /// <summary>Standard normal.</summary>
    public static Tensor randn(long[] shape, ScalarType? dtype = null, Device? device = null) => Factory(Ops.Randn, shape, dtype, device);
    public static Tensor randn(params long[] shape) => randn(shape, null);

    public static unsafe Tensor randint(long low, long high, long[] shape, Device? device = null)
    {
        fixed (long* p = shape)
            return Ops.RandintLow.Call([low, high, NativeArg.IntList(p, shape.Length), NativeArg.Dtype(int64), NativeArg.None,
                device is { } d ? NativeArg.Of(d) : NativeArg.None]);
    }

    public static Tensor randperm(long n) => Ops.Randperm.Call([n]);

    /// <summary>Values start, start+step, ... below end; integral arguments give int64, others float32.</summary>
    public static Tensor arange(Scalar start, Scalar end, Scalar? step = null, ScalarType? dtype = null, Device? device = null) =>
        Ops.Arange.Call([start, end, step ?? 1, NativeArg.Dtype(dtype), NativeArg.None, device is { } d ? NativeArg.Of(d) : NativeArg.None]);

    public static Tensor arange(long end, ScalarType? dtype = null) => arange(0, end, 1, dtype);

    /// <summary>Copies managed data into a new tensor of the given shape.</summary>
    public static unsafe Tensor tensor<T>(ReadOnlySpan<T> data, long[] shape, Device? device = null) where T : unmanaged
    {
        var dtype = ElementTypes.Of<T>();
        var dev = device ?? Device.CPU;
        fixed (T* d = data)
        fixed (long* s = shape)
            return Tensor.FromHandle(Native.peft_tensor_from_data(d, (long)data.Length * sizeof(T), s, shape.Length,
                (int)dtype, (int)dev.Type, dev.Index));
    }

    public static Tensor tensor<T>(T[] data, params long[] shape) where T : unmanaged =>
        tensor<T>(data.AsSpan(), shape.Length == 0 ? [data.Length] : shape);

    public static Tensor tensor(float value) => tensor<float>([value], []);

    /// <summary>Creates a tensor from raw little-endian bytes of the given dtype (used by the checkpoint readers).</summary>
    public static unsafe Tensor from_bytes(ReadOnlySpan<byte> data, ScalarType dtype, long[] shape, Device? device = null)
    {
        var dev = device ?? Device.CPU;
        fixed (byte* d = data)
        fixed (long* s = shape)
            return Tensor.FromHandle(Native.peft_tensor_from_data(d, data.Length, s, shape.Length, (int)dtype, (int)dev.Type, dev.Index));
    }

    // ---- joining ----------------------------------------------------------------------------

    private static unsafe Tensor JoinTensors(Op op, IReadOnlyList<Tensor> tensors, long dim)
    {
        var handles = tensors.Count <= 256 ? stackalloc nint[tensors.Count] : new nint[tensors.Count];
        for (var k = 0; k < tensors.Count; k++) handles[k] = tensors[k].Handle;
        fixed (nint* h = handles)
        {
            var r = op.Call([NativeArg.TensorList(h, tensors.Count), dim]);
            GC.KeepAlive(tensors);
            return r;
        }
    }

    public static Tensor cat(IReadOnlyList<Tensor> tensors, long dim = 0) => JoinTensors(Ops.Cat, tensors, dim);
    public static Tensor stack(IReadOnlyList<Tensor> tensors, long dim = 0) => JoinTensors(Ops.Stack, tensors, dim);

    public static Tensor matmul(Tensor a, Tensor b) => a.matmul(b);
    public static Tensor where(Tensor condition, Tensor x, Tensor y) => Ops.Where.Call([condition, x, y]);
}
