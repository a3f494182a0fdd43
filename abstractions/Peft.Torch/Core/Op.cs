using System.Runtime.InteropServices;

namespace Peft.Torch;

internal enum ArgTag : long
{
    Default = 0,
    None = 1,
    Tensor = 2,
    Int = 3,
    Double = 4,
    Bool = 5,
    IntList = 6,
    TensorList = 7,
    OptionalTensorList = 8,
    String = 9,
    Device = 10,
    DoubleList = 11,
}

/// <summary>One tagged positional argument of a boxed operator call (layout shared with the shim).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct NativeArg
{
    internal readonly ArgTag Tag;
    internal readonly long Bits;
    internal readonly long Length;

    private NativeArg(ArgTag tag, long bits, long length = 0) { Tag = tag; Bits = bits; Length = length; }

    /// <summary>Use the operator schema's default value for this position.</summary>
    public static readonly NativeArg Default = new(ArgTag.Default, 0);
    public static readonly NativeArg None = new(ArgTag.None, 0);
    public static NativeArg Int(long v) => new(ArgTag.Int, v);
    public static NativeArg Double(double v) => new(ArgTag.Double, BitConverter.DoubleToInt64Bits(v));
    public static NativeArg Bool(bool v) => new(ArgTag.Bool, v ? 1 : 0);
    public static NativeArg Of(Tensor t)
    {
        RecentArguments.Keep(t);
        return new(ArgTag.Tensor, t.Handle);
    }
    public static NativeArg OfOptional(Tensor? t) => t is null ? None : Of(t);
    public static NativeArg OfOptional(long? v) => v is { } x ? Int(x) : None;
    public static NativeArg OfOptional(double? v) => v is { } x ? Double(x) : None;
    public static NativeArg Dtype(ScalarType? t) => t is { } x ? Int((long)x) : None;
    public static NativeArg Of(Device d) => new(ArgTag.Device, (long)d.Type, d.Index);

    /// <summary>Pinned-memory arguments: the pointer must stay valid for the duration of the call.</summary>
    internal static unsafe NativeArg IntList(long* p, int n) => new(ArgTag.IntList, (long)p, n);
    internal static unsafe NativeArg DoubleList(double* p, int n) => new(ArgTag.DoubleList, (long)p, n);
    internal static unsafe NativeArg TensorList(nint* p, int n, bool optional = false) =>
        new(optional ? ArgTag.OptionalTensorList : ArgTag.TensorList, (long)p, n);
    internal static unsafe NativeArg Utf8(byte* p) => new(ArgTag.String, (long)p);

    public static implicit operator NativeArg(Tensor t) => Of(t);
    public static implicit operator NativeArg(long v) => Int(v);
    public static implicit operator NativeArg(int v) => Int(v);
    public static implicit operator NativeArg(double v) => Double(v);
    public static implicit operator NativeArg(bool v) => Bool(v);
}

/// <summary>
/// Keeps the last tensors passed to native calls on this thread reachable, so a temporary such as
/// the inner result of <c>a.add(b).mul(c)</c> cannot be finalized (and its native tensor freed)
/// while the native call that received its raw handle is still running. A small ring: it only
/// delays finalization, and dispose scopes release memory deterministically anyway.
/// </summary>
internal static class RecentArguments
{
    private const int Size = 64;
    [ThreadStatic] private static object?[]? s_ring;
    [ThreadStatic] private static int s_next;

    internal static void Keep(object o)
    {
        var ring = s_ring ??= new object?[Size];
        ring[s_next] = o;
        s_next = (s_next + 1) & (Size - 1);
    }
}

[StructLayout(LayoutKind.Sequential)]
internal readonly struct NativeRet
{
    internal readonly ArgTag Tag;
    internal readonly long Bits;

    internal long AsInt => Bits;
    internal double AsDouble => Tag == ArgTag.Int ? Bits : BitConverter.Int64BitsToDouble(Bits);
}

/// <summary>
/// An ATen operator reached through the boxed dispatcher, resolved on first use and cached.
/// An operator missing from the linked libtorch is reported by <see cref="IsAvailable"/>, so callers
/// can fall back (for example scaled_dot_product_attention before libtorch 2.0).
/// </summary>
public sealed class Op
{
    private readonly string _name;
    private readonly string _overload;
    private nint _handle;
    private bool _probed;

    public Op(string name, string overload = "")
    {
        _name = name.Contains("::", StringComparison.Ordinal) ? name : "aten::" + name;
        _overload = overload;
    }

    public override string ToString() => _overload.Length == 0 ? _name : $"{_name}.{_overload}";

    public bool IsAvailable => TryResolve() != 0;

    public string Schema => Native.String(Native.peft_op_schema(Handle));

    private nint Handle
    {
        get
        {
            var h = TryResolve();
            if (h == 0) throw new TorchException($"operator {this} is not available in libtorch {torch.__version__}");
            return h;
        }
    }

    private nint TryResolve()
    {
        if (_probed) return _handle;
        lock (this)
        {
            if (!_probed)
            {
                _handle = Native.peft_op_find(_name, _overload);
                _probed = true;
            }
        }
        return _handle;
    }

    /// <summary>Calls the operator and returns its single tensor result.</summary>
    public unsafe Tensor Call(scoped ReadOnlySpan<NativeArg> args)
    {
        NativeRet ret;
        int n;
        fixed (NativeArg* a = args)
            Native.Check(Native.peft_op_call(Handle, a, args.Length, &ret, 1, &n));
        if (n != 1 || ret.Tag != ArgTag.Tensor)
            throw new TorchException($"{this} returned no tensor");
        return new Tensor((nint)ret.Bits);
    }

    /// <summary>Calls an in-place operator, discarding its results.</summary>
    public unsafe void CallInPlace(scoped ReadOnlySpan<NativeArg> args)
    {
        int n;
        fixed (NativeArg* a = args)
            Native.Check(Native.peft_op_call(Handle, a, args.Length, null, 0, &n));
    }

    /// <summary>Calls an operator with several tensor results (tuples, tensor lists).</summary>
    public unsafe Tensor[] CallMany(scoped ReadOnlySpan<NativeArg> args, int maxResults = 64)
    {
        var rets = stackalloc NativeRet[maxResults];
        int n;
        fixed (NativeArg* a = args)
            Native.Check(Native.peft_op_call(Handle, a, args.Length, rets, maxResults, &n));
        var result = new Tensor[n];
        for (var k = 0; k < n; k++)
        {
            if (rets[k].Tag != ArgTag.Tensor)
            {
                for (var j = k; j < n; j++)
                    if (rets[j].Tag == ArgTag.Tensor) Native.peft_tensor_free((nint)rets[j].Bits);
                foreach (var t in result.AsSpan(0, k)) t.Dispose();
                throw new TorchException($"{this} returned a non-tensor result at position {k}");
            }
            result[k] = new Tensor((nint)rets[k].Bits);
        }
        return result;
    }

    /// <summary>Calls an operator whose single result is a number (int, float or bool).</summary>
    internal unsafe NativeRet CallScalar(scoped ReadOnlySpan<NativeArg> args)
    {
        NativeRet ret;
        int n;
        fixed (NativeArg* a = args)
            Native.Check(Native.peft_op_call(Handle, a, args.Length, &ret, 1, &n));
        if (n != 1 || ret.Tag is ArgTag.Tensor or ArgTag.None)
        {
            if (ret.Tag == ArgTag.Tensor) Native.peft_tensor_free((nint)ret.Bits);
            throw new TorchException($"{this} returned no number");
        }
        return ret;
    }
}
