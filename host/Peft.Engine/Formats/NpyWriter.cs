using System.Buffers.Binary;
using System.Globalization;
using System.IO.Compression;
using System.Text;

using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine.Formats;

/// <summary>
/// Writes NumPy's <c>.npy</c> format, version 1.0, as <c>np.save</c> does: the magic <c>\x93NUMPY</c>,
/// version 1.0, a little-endian u16 header length, the header dict padded with spaces and a newline so
/// that the data starts at a multiple of 64 bytes, then the elements little-endian in C order.
/// </summary>
public static class NpyWriter
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0];

    private const int Alignment = 64;

    /// <summary>NumPy's dtype string for a scalar type, or null for those this writer does not support.</summary>
    internal static string? Descr(ScalarType type) => type switch
    {
        ScalarType.Float32 => "<f4",
        ScalarType.Float64 => "<f8",
        ScalarType.Float16 => "<f2",
        ScalarType.Int64 => "<i8",
        ScalarType.Int32 => "<i4",
        ScalarType.Byte => "|u1",
        ScalarType.Bool => "|b1",
        _ => null,
    };

    /// <summary>Writes one array (from any device, any strides) to the stream.</summary>
    /// <exception cref="NotSupportedException">The dtype has no writer here (supported: f4 f8 f2 i8 i4 u1 b1).</exception>
    public static void Write(Stream stream, Tensor tensor)
    {
        stream.Write(Header(tensor));
        TensorBytes.Write(stream, tensor);
    }

    /// <summary>Writes one array to a <c>.npy</c> file.</summary>
    public static void Write(string path, Tensor tensor)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        Write(stream, tensor);
    }

    private static byte[] Header(Tensor tensor)
    {
        var descr = Descr(tensor.dtype)
            ?? throw new NotSupportedException($"no .npy writer for {tensor.dtype.Name()} (supported: f4 f8 f2 i8 i4 u1 b1)");
        var dims = tensor.shape.Select(d => d.ToString(CultureInfo.InvariantCulture)).ToArray();
        // Python's tuple repr: (), (5,), (3, 4).
        var shape = dims.Length == 1 ? $"({dims[0]},)" : $"({string.Join(", ", dims)})";
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        var unpadded = Magic.Length + 2 + dict.Length + 1;
        var text = dict + new string(' ', (Alignment - unpadded % Alignment) % Alignment) + "\n";
        if (text.Length > ushort.MaxValue) throw new NotSupportedException($"a .npy 1.0 header holds at most 65535 bytes, this one needs {text.Length}");

        var header = new byte[Magic.Length + 2 + text.Length];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(Magic.Length), (ushort)text.Length);
        Encoding.Latin1.GetBytes(text, header.AsSpan(Magic.Length + 2));
        return header;
    }
}

public static partial class Npz
{
    /// <summary>
    /// Writes arrays to a <c>.npz</c> file as <c>np.savez</c> does: a zip of stored (uncompressed)
    /// members named <c>name.npy</c>, in the order given. Names may contain '/', as Flax checkpoints' do.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> arrays)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in arrays)
        {
            if (!seen.Add(name)) throw new ArgumentException($"array '{name}' is given twice", nameof(arrays));
            using var member = zip.CreateEntry(name + ".npy", CompressionLevel.NoCompression).Open();
            NpyWriter.Write(member, tensor);
        }
    }
}
