using System.Runtime.InteropServices;
using System.Text;

namespace Peft.Torch;

/// <summary>Owns one native at::Tensor handle; released by Dispose, a dispose scope or, last, the finalizer.</summary>
internal sealed class TensorHandle : SafeHandle
{
    public TensorHandle(nint handle) : base(0, ownsHandle: true) => SetHandle(handle);
    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        Native.peft_tensor_free(handle);
        return true;
    }
}

/// <summary>
/// A libtorch tensor. Creating one registers it with the innermost <see cref="DisposeScope"/> of the
/// thread, if any; disposing the scope releases every tensor it still owns.
/// </summary>
public partial class Tensor : IDisposable
{
    private readonly TensorHandle _handle;
    private long[]? _shape;
    private ScalarType _dtype;
    private Device _device;
    internal DisposeScope? OwningScope;

    internal Tensor(nint handle)
    {
        _handle = new TensorHandle(Native.Check(handle));
        DisposeScope.Current?.Attach(this);
    }

    /// <summary>Wraps a native handle returned by a shim function (takes ownership).</summary>
    internal static Tensor FromHandle(nint handle) => new(handle);

    internal nint Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.DangerousGetHandle();
        }
    }

    public bool IsDisposed => _handle.IsClosed;

    /// <summary>
    /// A second managed handle on the same native tensor (same storage, same autograd identity), to be
    /// disposed independently: for keeping a tensor beyond the scope or owner of the original.
    /// </summary>
    public Tensor alias() => new(Native.peft_tensor_alias(Handle));

    public void Dispose()
    {
        _handle.Dispose();
        GC.SuppressFinalize(this);
    }

    // ---- metadata ---------------------------------------------------------------------------

    private unsafe void LoadInfo()
    {
        int dtype, ndim, deviceType, deviceIndex, requiresGrad;
        var shape = stackalloc long[16];
        Native.Check(Native.peft_tensor_info(Handle, &dtype, &ndim, shape, &deviceType, &deviceIndex, &requiresGrad));
        _dtype = (ScalarType)dtype;
        _device = new Device((DeviceType)deviceType, deviceIndex);
        _shape = new ReadOnlySpan<long>(shape, ndim).ToArray();
    }

    /// <summary>The sizes of the dimensions (a copy).</summary>
    public long[] shape => (long[])Shape.Clone();

    internal long[] Shape
    {
        get
        {
            if (_shape is null) LoadInfo();
            return _shape!;
        }
    }

    public ScalarType dtype
    {
        get
        {
            if (_shape is null) LoadInfo();
            return _dtype;
        }
    }

    public Device device
    {
        get
        {
            if (_shape is null) LoadInfo();
            return _device;
        }
    }

    public int dim() => Shape.Length;
    public int ndim => Shape.Length;

    /// <summary>Size of dimension <paramref name="d"/> (negative counts from the end).</summary>
    public long size(int d) => Shape[d < 0 ? d + Shape.Length : d];

    public long numel()
    {
        long n = 1;
        foreach (var s in Shape) n *= s;
        return n;
    }

    public string ShapeString => "[" + string.Join(", ", Shape) + "]";

    // ---- autograd ---------------------------------------------------------------------------

    public bool requires_grad
    {
        get => Native.peft_tensor_requires_grad(Handle) != 0;
        set => Native.Check(Native.peft_tensor_set_requires_grad(Handle, value ? 1 : 0));
    }

    public Tensor requires_grad_(bool value = true)
    {
        requires_grad = value;
        return this;
    }

    public bool is_leaf => Native.peft_tensor_is_leaf(Handle) != 0;

    /// <summary>Accumulates gradients of this tensor into the leaves' <see cref="grad"/>.</summary>
    public void backward(Tensor? gradient = null, bool retain_graph = false) =>
        Native.Check(Native.peft_tensor_backward(Handle, gradient?.Handle ?? 0, retain_graph ? 1 : 0));

    /// <summary>The accumulated gradient (a new handle on each call; null before any backward).</summary>
    public unsafe Tensor? grad
    {
        get
        {
            nint g;
            Native.Check(Native.peft_tensor_grad(Handle, &g));
            return g == 0 ? null : new Tensor(g);
        }
        set => Native.Check(Native.peft_tensor_set_grad(Handle, value?.Handle ?? 0));
    }

    /// <summary>Clears the gradient (as PyTorch's zero_grad(set_to_none=True)).</summary>
    public void zero_grad() => grad = null;

    // ---- data -------------------------------------------------------------------------------

    /// <summary>Copies the elements (row-major) into <paramref name="destination"/>.</summary>
    public unsafe void CopyTo<T>(Span<T> destination) where T : unmanaged
    {
        CheckElementType<T>();
        fixed (T* p = destination)
            Native.Check(Native.peft_tensor_copy_to(Handle, p, (long)destination.Length * sizeof(T)));
    }

    /// <summary>Copies the elements (row-major) into a new array.</summary>
    public T[] data<T>() where T : unmanaged
    {
        var result = new T[numel()];
        CopyTo<T>(result);
        return result;
    }

    /// <summary>The raw bytes of the elements, row-major, little-endian.</summary>
    public unsafe byte[] bytes()
    {
        var result = new byte[numel() * dtype.ElementSize()];
        fixed (byte* p = result)
            Native.Check(Native.peft_tensor_copy_to(Handle, p, result.Length));
        return result;
    }

    /// <summary>
    /// Copies the raw bytes of the elements (row-major, little-endian) into <paramref name="destination"/>, which must
    /// hold exactly numel × element size bytes: for streaming large tensors through one reused buffer.
    /// </summary>
    public unsafe void CopyBytesTo(Span<byte> destination)
    {
        var size = numel() * dtype.ElementSize();
        if (destination.Length != size) throw new ArgumentException($"{this} has {size} bytes; the destination holds {destination.Length}", nameof(destination));
        fixed (byte* p = destination)
            Native.Check(Native.peft_tensor_copy_to(Handle, p, size));
    }

    private void CheckElementType<T>() where T : unmanaged
    {
        var expected = ElementTypes.Of<T>();
        if (expected != dtype && !(typeof(T) == typeof(byte) && dtype is ScalarType.Bool))
            throw new TorchException($"tensor of {dtype.Name()} read as {typeof(T).Name}; convert with .to({expected.Name()}) first");
    }

    public override string ToString() => $"Tensor({ShapeString}, {dtype.Name()}, {device})";

    /// <summary>A short printout of up to <paramref name="max"/> values, for logs and debugging.</summary>
    public string ToText(int max = 16)
    {
        using var f = to(ScalarType.Float64);
        var values = f.data<double>();
        var sb = new StringBuilder(ToString()).Append(' ').Append('[');
        sb.AppendJoin(", ", values.Take(max).Select(v => v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture)));
        if (values.Length > max) sb.Append(", ...");
        return sb.Append(']').ToString();
    }
}

/// <summary>Maps managed element types to dtypes.</summary>
public static class ElementTypes
{
    public static ScalarType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? ScalarType.Float32 :
        typeof(T) == typeof(double) ? ScalarType.Float64 :
        typeof(T) == typeof(long) ? ScalarType.Int64 :
        typeof(T) == typeof(int) ? ScalarType.Int32 :
        typeof(T) == typeof(short) ? ScalarType.Int16 :
        typeof(T) == typeof(byte) ? ScalarType.Byte :
        typeof(T) == typeof(sbyte) ? ScalarType.Int8 :
        typeof(T) == typeof(bool) ? ScalarType.Bool :
        typeof(T) == typeof(Half) ? ScalarType.Float16 :
        throw new NotSupportedException($"no dtype for {typeof(T).Name}");
}
