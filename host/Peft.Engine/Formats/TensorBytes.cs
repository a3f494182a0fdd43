using System.Buffers.Binary;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine.Formats;

/// <summary>
/// Moves the raw little-endian element bytes of tensors between native memory, streams and libtorch without staging
/// them in managed arrays, so tensors above 2 GiB work too (in slices of at most 1 GiB).
/// </summary>
internal static unsafe class TensorBytes
{
    private const long Slice = 1L << 30;

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

    /// <summary>Copies <paramref name="length"/> bytes at <paramref name="data"/> into a new tensor (on the CPU, then moved).</summary>
    internal static Tensor Copy(byte* data, long length, ScalarType dtype, long[] shape, Device? device = null)
    {
        var tensor = empty(shape, dtype);
        try
        {
            long done = 0;
            ForEachSlice(tensor, slice =>
            {
                new ReadOnlySpan<byte>(data + done, slice.Length).CopyTo(slice);
                done += slice.Length;
            });
            if (done != length) throw new InvalidDataException($"{length} bytes given for a {dtype} tensor of {done}");
            if (device is null || device.type == DeviceType.CPU) return tensor;
            using (tensor) return tensor.to(device);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Reads exactly the bytes of a tensor of this dtype and shape from the stream into a new CPU tensor.</summary>
    /// <exception cref="EndOfStreamException">The stream ends first.</exception>
    internal static Tensor Read(Stream stream, ScalarType dtype, long[] shape)
    {
        var tensor = empty(shape, dtype);
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
        using var host = detached.device_type == DeviceType.CPU ? detached.alias() : detached.cpu();
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

    // Visits the storage of a contiguous CPU tensor in slices of whole elements (TorchSharp's byte span is int-sized).
    private static void ForEachSlice(Tensor contiguous, SliceAction action)
    {
        if (contiguous.numel() == 0) return;
        using var flat = contiguous.view(-1);
        var perSlice = Slice / contiguous.dtype.ElementSize();
        for (long start = 0; start < flat.numel(); start += perSlice)
        {
            using var part = flat.narrow(0, start, Math.Min(perSlice, flat.numel() - start));
            action(part.bytes);
        }
    }
}
