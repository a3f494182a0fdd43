namespace Peft.Torch;

// Tensor methods in PyTorch's spelling. Each is one boxed call of the operator named in Ops.
public partial class Tensor
{
    // ---- shape ------------------------------------------------------------------------------

    public unsafe Tensor view(params long[] shape)
    {
        fixed (long* p = shape) return Ops.View.Call([this, NativeArg.IntList(p, shape.Length)]);
    }

    public unsafe Tensor reshape(params long[] shape)
    {
        fixed (long* p = shape) return Ops.Reshape.Call([this, NativeArg.IntList(p, shape.Length)]);
    }

    public unsafe Tensor permute(params long[] dims)
    {
        fixed (long* p = dims) return Ops.Permute.Call([this, NativeArg.IntList(p, dims.Length)]);
    }

    public unsafe Tensor expand(params long[] shape)
    {
        fixed (long* p = shape) return Ops.Expand.Call([this, NativeArg.IntList(p, shape.Length)]);
    }

    public unsafe Tensor repeat(params long[] repeats)
    {
        fixed (long* p = repeats) return Ops.Repeat.Call([this, NativeArg.IntList(p, repeats.Length)]);
    }

    public unsafe Tensor flip(params long[] dims)
    {
        fixed (long* p = dims) return Ops.Flip.Call([this, NativeArg.IntList(p, dims.Length)]);
    }

    public Tensor transpose(long dim0, long dim1) => Ops.Transpose.Call([this, dim0, dim1]);
    public Tensor t() => Ops.T.Call([this]);
    public Tensor narrow(long dim, long start, long length) => Ops.Narrow.Call([this, dim, start, length]);

    /// <summary>Elements start..end-1 (with step) along <paramref name="dim"/>; null bounds mean the ends.</summary>
    public Tensor slice(long dim, long? start, long? end, long step = 1) =>
        Ops.Slice.Call([this, dim, NativeArg.OfOptional(start), NativeArg.OfOptional(end), step]);

    /// <summary>Selects index <paramref name="index"/> of <paramref name="dim"/>, removing the dimension.</summary>
    public Tensor select(long dim, long index) => Ops.Select.Call([this, dim, index]);

    public Tensor index_select(long dim, Tensor index) => Ops.IndexSelect.Call([this, dim, index]);
    public Tensor gather(long dim, Tensor index) => Ops.Gather.Call([this, dim, index]);
    public Tensor flatten(long start_dim = 0, long end_dim = -1) => Ops.Flatten.Call([this, start_dim, end_dim]);
    public Tensor unsqueeze(long dim) => Ops.Unsqueeze.Call([this, dim]);
    public Tensor squeeze(long dim) => Ops.SqueezeDim.Call([this, dim]);
    public Tensor squeeze() => Ops.Squeeze.Call([this]);
    public Tensor contiguous() => Ops.Contiguous.Call([this]);
    public Tensor[] chunk(long chunks, long dim = 0) => Ops.Chunk.CallMany([this, chunks, dim], 1024);
    public Tensor[] split(long split_size, long dim = 0) => Ops.Split.CallMany([this, split_size, dim], 4096);
    public Tensor[] unbind(long dim = 0) => Ops.Unbind.CallMany([this, dim], 4096);

    /// <summary>Advanced indexing with one index tensor per leading dimension (null = all).</summary>
    public unsafe Tensor index(params Tensor?[] indices)
    {
        var handles = stackalloc nint[indices.Length];
        for (var k = 0; k < indices.Length; k++) handles[k] = indices[k]?.Handle ?? 0;
        var r = Ops.Index.Call([this, NativeArg.TensorList(handles, indices.Length, optional: true)]);
        GC.KeepAlive(indices);
        return r;
    }

    // ---- arithmetic ---------------------------------------------------------------------------

    public Tensor add(Tensor other, Scalar? alpha = null) => Ops.Add.Call([this, other, alpha ?? 1]);
    public Tensor add(Scalar other) => Ops.AddScalar.Call([this, other]);
    public Tensor sub(Tensor other, Scalar? alpha = null) => Ops.Sub.Call([this, other, alpha ?? 1]);
    public Tensor sub(Scalar other) => Ops.SubScalar.Call([this, other]);
    public Tensor mul(Tensor other) => Ops.Mul.Call([this, other]);
    public Tensor mul(Scalar other) => Ops.MulScalar.Call([this, other]);
    public Tensor div(Tensor other) => Ops.Div.Call([this, other]);
    public Tensor div(Scalar other) => Ops.DivScalar.Call([this, other]);
    public Tensor neg() => Ops.Neg.Call([this]);
    public Tensor pow(Scalar exponent) => Ops.Pow.Call([this, exponent]);
    public Tensor exp() => Ops.Exp.Call([this]);
    public Tensor log() => Ops.Log.Call([this]);
    public Tensor sqrt() => Ops.Sqrt.Call([this]);
    public Tensor rsqrt() => Ops.Rsqrt.Call([this]);
    public Tensor abs() => Ops.Abs.Call([this]);
    public Tensor sign() => Ops.Sign.Call([this]);
    public Tensor clamp(Scalar? min = null, Scalar? max = null) =>
        Ops.Clamp.Call([this, min is { } lo ? lo : NativeArg.None, max is { } hi ? hi : NativeArg.None]);
    public Tensor maximum(Tensor other) => Ops.Maximum.Call([this, other]);
    public Tensor minimum(Tensor other) => Ops.Minimum.Call([this, other]);
    public Tensor masked_fill(Tensor mask, Scalar value) => Ops.MaskedFill.Call([this, mask, value]);
    public Tensor matmul(Tensor other) => Ops.Matmul.Call([this, other]);
    public Tensor bmm(Tensor other) => Ops.Bmm.Call([this, other]);

    public static Tensor operator +(Tensor a, Tensor b) => a.add(b);
    public static Tensor operator +(Tensor a, double b) => a.add(b);
    public static Tensor operator +(double a, Tensor b) => b.add(a);
    public static Tensor operator -(Tensor a, Tensor b) => a.sub(b);
    public static Tensor operator -(Tensor a, double b) => a.sub(b);
    public static Tensor operator -(double a, Tensor b)
    {
        using var n = b.neg();
        return n.add(a);
    }
    public static Tensor operator *(Tensor a, Tensor b) => a.mul(b);
    public static Tensor operator *(Tensor a, double b) => a.mul(b);
    public static Tensor operator *(double a, Tensor b) => b.mul(a);
    public static Tensor operator /(Tensor a, Tensor b) => a.div(b);
    public static Tensor operator /(Tensor a, double b) => a.div(b);
    public static Tensor operator -(Tensor a) => a.neg();

    // ---- comparison (== and != keep reference semantics; use eq / ne) --------------------------

    public Tensor eq(Tensor other) => Ops.Eq.Call([this, other]);
    public Tensor eq(Scalar other) => Ops.EqScalar.Call([this, other]);
    public Tensor ne(Tensor other) => Ops.Ne.Call([this, other]);
    public Tensor ne(Scalar other) => Ops.NeScalar.Call([this, other]);
    public Tensor lt(Tensor other) => Ops.Lt.Call([this, other]);
    public Tensor lt(Scalar other) => Ops.LtScalar.Call([this, other]);
    public Tensor le(Tensor other) => Ops.Le.Call([this, other]);
    public Tensor le(Scalar other) => Ops.LeScalar.Call([this, other]);
    public Tensor gt(Tensor other) => Ops.Gt.Call([this, other]);
    public Tensor gt(Scalar other) => Ops.GtScalar.Call([this, other]);
    public Tensor ge(Tensor other) => Ops.Ge.Call([this, other]);
    public Tensor ge(Scalar other) => Ops.GeScalar.Call([this, other]);
    public static Tensor operator <(Tensor a, Tensor b) => a.lt(b);
    public static Tensor operator >(Tensor a, Tensor b) => a.gt(b);
    public static Tensor operator <=(Tensor a, Tensor b) => a.le(b);
    public static Tensor operator >=(Tensor a, Tensor b) => a.ge(b);
    public static Tensor operator <(Tensor a, double b) => a.lt(b);
    public static Tensor operator >(Tensor a, double b) => a.gt(b);
    public static Tensor operator <=(Tensor a, double b) => a.le(b);
    public static Tensor operator >=(Tensor a, double b) => a.ge(b);

    /// <summary>True when both tensors have the same shape and elements.</summary>
    public bool equal(Tensor other) => Ops.Equal.CallScalar([this, other]).AsInt != 0;

    public bool allclose(Tensor other, double rtol = 1e-5, double atol = 1e-8) =>
        Ops.AllClose.CallScalar([this, other, rtol, atol]).AsInt != 0;

    public Tensor isfinite() => Ops.IsFinite.Call([this]);
    public Tensor all() => Ops.All.Call([this]);
    public Tensor any() => Ops.Any.Call([this]);

    // ---- reductions ---------------------------------------------------------------------------

    // No dtype overload: C# converts the literal 0 to any enum, so sum(ScalarType) would silently win over sum(0).
    public Tensor sum() => Ops.Sum.Call([this]);
    public unsafe Tensor sum(long[] dim, bool keepdim = false)
    {
        fixed (long* p = dim) return Ops.SumDim.Call([this, NativeArg.IntList(p, dim.Length), keepdim]);
    }
    public Tensor sum(long dim, bool keepdim = false) => sum([dim], keepdim);

    public Tensor mean() => Ops.Mean.Call([this]);
    public unsafe Tensor mean(long[] dim, bool keepdim = false)
    {
        fixed (long* p = dim) return Ops.MeanDim.Call([this, NativeArg.IntList(p, dim.Length), keepdim]);
    }
    public Tensor mean(long dim, bool keepdim = false) => mean([dim], keepdim);

    public Tensor max() => Ops.Max.Call([this]);
    public (Tensor values, Tensor indices) max(long dim, bool keepdim = false)
    {
        var r = Ops.MaxDim.CallMany([this, dim, keepdim], 2);
        return (r[0], r[1]);
    }
    public Tensor min() => Ops.Min.Call([this]);
    public (Tensor values, Tensor indices) min(long dim, bool keepdim = false)
    {
        var r = Ops.MinDim.CallMany([this, dim, keepdim], 2);
        return (r[0], r[1]);
    }

    public Tensor argmax() => Ops.Argmax.Call([this]);
    public Tensor argmax(long dim, bool keepdim = false) => Ops.Argmax.Call([this, dim, keepdim]);

    public unsafe Tensor logsumexp(long dim, bool keepdim = false)
    {
        var d = dim;
        return Ops.Logsumexp.Call([this, NativeArg.IntList(&d, 1), keepdim]);
    }

    /// <summary>Vector p-norm over all elements, or over <paramref name="dim"/>.</summary>
    public unsafe Tensor norm(double p = 2, long? dim = null, bool keepdim = false)
    {
        var d = dim ?? 0;
        return Ops.VectorNorm.Call([this, p, dim is null ? NativeArg.None : NativeArg.IntList(&d, 1), keepdim]);
    }

    public unsafe Tensor var(long dim, bool unbiased = true, bool keepdim = false)
    {
        var d = dim;
        return Ops.Var.Call([this, NativeArg.IntList(&d, 1), unbiased ? 1 : 0, keepdim]);
    }

    public Tensor cumsum(long dim) => Ops.Cumsum.Call([this, dim]);

    public (Tensor values, Tensor indices) topk(long k, long dim = -1, bool largest = true)
    {
        var r = Ops.TopK.CallMany([this, k, dim, largest, true], 2);
        return (r[0], r[1]);
    }

    public (Tensor values, Tensor indices) sort(long dim = -1, bool descending = false)
    {
        var r = Ops.Sort.CallMany([this, dim, descending], 2);
        return (r[0], r[1]);
    }

    // ---- conversion -------------------------------------------------------------------------

    public Tensor to(ScalarType dtype) =>
        Ops.ToCopy.Call([this, NativeArg.Dtype(dtype)]);

    public Tensor to(Device device) =>
        Ops.ToCopy.Call([this, NativeArg.None, NativeArg.None, NativeArg.Of(device)]);

    public Tensor to(ScalarType dtype, Device device) =>
        Ops.ToCopy.Call([this, NativeArg.Dtype(dtype), NativeArg.None, NativeArg.Of(device)]);

    public Tensor cpu() => to(Device.CPU);
    public Tensor cuda(int index = 0) => to(Device.CUDA(index));
    public Tensor @float() => to(ScalarType.Float32);
    public Tensor @long() => to(ScalarType.Int64);

    /// <summary>A tensor sharing storage with this one, cut from the autograd graph.</summary>
    public Tensor detach() => Ops.Detach.Call([this]);

    public Tensor clone() => Ops.Clone.Call([this]);

    /// <summary>The value of a one-element tensor.</summary>
    public double item() => Ops.Item.CallScalar([this]).AsDouble;

    public T item<T>() where T : unmanaged
    {
        var r = Ops.Item.CallScalar([this]);
        object value = typeof(T) == typeof(float) ? (float)r.AsDouble
            : typeof(T) == typeof(double) ? r.AsDouble
            : typeof(T) == typeof(long) ? r.Tag == ArgTag.Int || r.Tag == ArgTag.Bool ? r.AsInt : (long)r.AsDouble
            : typeof(T) == typeof(int) ? (int)(r.Tag == ArgTag.Int || r.Tag == ArgTag.Bool ? r.AsInt : (long)r.AsDouble)
            : typeof(T) == typeof(bool) ? r.AsInt != 0
            : throw new NotSupportedException($"item<{typeof(T).Name}>");
        return (T)value;
    }

    // ---- in place (return this) --------------------------------------------------------------

    public Tensor copy_(Tensor src)
    {
        Ops.Copy_.CallInPlace([this, src]);
        return this;
    }

    public Tensor fill_(Scalar value)
    {
        Ops.Fill_.CallInPlace([this, value]);
        return this;
    }

    public Tensor zero_()
    {
        Ops.Zero_.CallInPlace([this]);
        return this;
    }

    public Tensor add_(Tensor other, Scalar? alpha = null)
    {
        Ops.Add_.CallInPlace([this, other, alpha ?? 1]);
        return this;
    }

    public Tensor add_(Scalar other)
    {
        Ops.AddScalar_.CallInPlace([this, other]);
        return this;
    }

    public Tensor mul_(Tensor other)
    {
        Ops.Mul_.CallInPlace([this, other]);
        return this;
    }

    public Tensor mul_(Scalar other)
    {
        Ops.MulScalar_.CallInPlace([this, other]);
        return this;
    }

    public Tensor div_(Tensor other)
    {
        Ops.Div_.CallInPlace([this, other]);
        return this;
    }

    public Tensor div_(Scalar other)
    {
        Ops.DivScalar_.CallInPlace([this, other]);
        return this;
    }

    public Tensor addcmul_(Tensor t1, Tensor t2, Scalar value)
    {
        Ops.Addcmul_.CallInPlace([this, t1, t2, value]);
        return this;
    }

    public Tensor addcdiv_(Tensor t1, Tensor t2, Scalar value)
    {
        Ops.Addcdiv_.CallInPlace([this, t1, t2, value]);
        return this;
    }

    public Tensor lerp_(Tensor end, Scalar weight)
    {
        Ops.Lerp_.CallInPlace([this, end, weight]);
        return this;
    }

    public Tensor clamp_(Scalar? min = null, Scalar? max = null)
    {
        Ops.Clamp_.CallInPlace([this, min is { } lo ? lo : NativeArg.None, max is { } hi ? hi : NativeArg.None]);
        return this;
    }

    public Tensor normal_(double mean = 0, double std = 1)
    {
        Ops.Normal_.CallInPlace([this, mean, std]);
        return this;
    }

    public Tensor uniform_(double from = 0, double to = 1)
    {
        Ops.Uniform_.CallInPlace([this, from, to]);
        return this;
    }

    // ---- added for torch.nn / torch.optim -------------------------------------------------------

    /// <summary>
    /// Makes this tensor use <paramref name="new_data"/>'s storage, dtype, device and shape, keeping its
    /// identity (PyTorch's <c>param.data = new_data</c>, used by Module.to). Cached metadata is reloaded.
    /// </summary>
    public Tensor set_data(Tensor new_data)
    {
        NNOps.SetData.CallInPlace([this, new_data]);
        _shape = null;
        return this;
    }

    public Tensor erf() => NNOps.Erf.Call([this]);

    public Tensor erfinv_()
    {
        NNOps.Erfinv_.CallInPlace([this]);
        return this;
    }
}
