using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Peft.Torch.Formats;

/// <summary>
/// Moves the raw little-endian element bytes of tensors between native memory, streams and
/// libtorch without staging them in managed arrays, so tensors above 2 GiB work too.
/// </summary>
internal static unsafe class TensorBytes
{
    // Spans are int-sized; larger tensors move in slices of this many bytes.
    private const int Slice = 1 << 30;

    /// <summary>numel × element size, or null when a dimension is negative or the product overflows.</summary>
    internal static long? ByteLength(ScalarType dtype, IReadOnlyList<long> shape)
    {
        long bytes = dtype.ElementSize();
        foreach (var d in shape)
        {
            if (d < 0) return null;
            try { bytes = checked(bytes * d); }
            catch (OverflowException) { return null; }
        }
        return bytes;
    }

    /// <summary>Copies <paramref name="length"/> bytes at <paramref name="data"/> into a new tensor.</summary>
    internal static Tensor Copy(byte* data, long length, ScalarType dtype, long[] shape, Device? device = null)
    {
        var dev = device ?? Device.CPU;
        fixed (long* s = shape)
            return Tensor.FromHandle(Native.peft_tensor_from_data(data, length, s, shape.Length, (int)dtype, (int)dev.Type, dev.Index));
    }

    /// <summary>Reads exactly the bytes of a tensor of this dtype and shape from the stream into a new CPU tensor.</summary>
    /// <exception cref="EndOfStreamException">The stream ends first.</exception>
    internal static Tensor Read(Stream stream, ScalarType dtype, long[] shape)
    {
        var tensor = torch.empty(shape, dtype);
        try
        {
            ForEachSlice(tensor, slice => stream.ReadExactly(slice));
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Writes the tensor's elements, row-major, to the stream (from any device, any strides).</summary>
    internal static void Write(Stream stream, Tensor tensor)
    {
        using var detached = tensor.detach();
        using var host = detached.device.Type == DeviceType.CPU ? detached.contiguous() : detached.cpu();
        using var dense = host.contiguous();
        ForEachSlice(dense, slice => stream.Write(slice));
    }

    /// <summary>Reverses the byte order of every element of a CPU tensor in place (big-endian input).</summary>
    internal static void SwapByteOrder(Tensor tensor)
    {
        switch (tensor.dtype.ElementSize())
        {
            case 2: ForEachSlice(tensor, s => BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, short>(s), MemoryMarshal.Cast<byte, short>(s))); break;
            case 4: ForEachSlice(tensor, s => BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, int>(s), MemoryMarshal.Cast<byte, int>(s))); break;
            case 8: ForEachSlice(tensor, s => BinaryPrimitives.ReverseEndianness(MemoryMarshal.Cast<byte, long>(s), MemoryMarshal.Cast<byte, long>(s))); break;
        }
    }

    private delegate void SliceAction(Span<byte> slice);

    // Visits the storage of a contiguous CPU tensor in slices aligned to 8 bytes.
    private static void ForEachSlice(Tensor contiguous, SliceAction action)
    {
        var length = contiguous.numel() * contiguous.dtype.ElementSize();
        if (length == 0) return;
        var start = (byte*)Native.Check(Native.peft_tensor_data_ptr(contiguous.Handle));
        for (long done = 0; done < length; done += Slice)
            action(new Span<byte>(start + done, (int)Math.Min(Slice, length - done)));
        GC.KeepAlive(contiguous);
    }
}
