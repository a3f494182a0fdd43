using System.IO.Compression;

namespace Peft.Data;

/// <summary>
/// An IDX array (the MNIST file format): a big-endian magic 0x0000TTNN (TT = element type, 0x08 for
/// uint8; NN = number of dimensions), NN big-endian int32 sizes, then the elements row-major.
/// </summary>
public sealed record IdxArray(int[] Dims, byte[] Data)
{
    public const int ImagesMagic = 0x00000803, LabelsMagic = 0x00000801;

    /// <summary>Largest array read by default (256 MiB, Data:MaxFileBytes's default); Fashion-MNIST's training images take 47 MB.</summary>
    public const long DefaultMaxBytes = 256L << 20;

    /// <summary>
    /// Reads an uint8 IDX file with <paramref name="expectedDims"/> dimensions; gzip-compressed files (magic 1f 8b)
    /// are decompressed on the fly. The size the header declares is checked before the array is allocated: against
    /// <paramref name="maxBytes"/>, and for an uncompressed file against its length. Errors name the file.
    /// </summary>
    public static IdxArray Read(string path, int expectedDims, long maxBytes = DefaultMaxBytes)
    {
        using var file = OpenMaybeGzip(path, out var plainLength);
        var word = new byte[4];
        ReadFully(file, word, path, "magic number");
        var magic = ReadBigEndian(word);
        var expected = 0x0800 | expectedDims;
        if (magic != expected)
            throw new DatasetFormatException(path, $"IDX magic 0x{magic:X8}, expected 0x{expected:X8} (uint8, {expectedDims} dimensions)");
        var dims = new int[expectedDims];
        long total = 1;
        for (var d = 0; d < dims.Length; d++)
        {
            ReadFully(file, word, path, "dimensions");
            dims[d] = ReadBigEndian(word);
            if (dims[d] < 0) throw new DatasetFormatException(path, $"IDX dimension {d} is negative ({dims[d]})");
            total *= dims[d];
        }
        if (total > maxBytes)
            throw new DatasetFormatException(path, $"its header declares {string.Join('x', dims)} = {total} bytes, above the limit of {maxBytes} bytes " +
                                                   "(Data:MaxFileBytes); nothing was allocated");
        if (total > Array.MaxLength) throw new DatasetFormatException(path, $"IDX array of {total} elements is too large");
        if (plainLength is { } length && total > length - 4 * (1 + expectedDims))
            throw new DatasetFormatException(path, $"file ends inside the data ({string.Join('x', dims)} = {total} bytes declared, " +
                                                   $"{length - 4 * (1 + expectedDims)} present)");
        var data = new byte[total];
        ReadFully(file, data, path, $"data ({string.Join('x', dims)} = {total} bytes)");
        if (file.ReadByte() != -1)
            throw new DatasetFormatException(path, $"trailing bytes after {string.Join('x', dims)} elements");
        return new IdxArray(dims, data);
    }

    /// <param name="plainLength">The file's length when it is not compressed (what its data can hold), else null.</param>
    private static Stream OpenMaybeGzip(string path, out long? plainLength)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: IDX file not found", path);
        var file = new BufferedStream(File.OpenRead(path), 1 << 16);
        Span<byte> magic = stackalloc byte[2];
        var n = file.Read(magic);
        file.Position = 0;
        var gzip = n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
        plainLength = gzip ? null : file.Length;
        return gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
    }

    private static void ReadFully(Stream s, byte[] buffer, string path, string what)
    {
        try
        {
            s.ReadExactly(buffer);
        }
        catch (EndOfStreamException)
        {
            throw new DatasetFormatException(path, $"file ends inside the {what}");
        }
        catch (InvalidDataException e)
        {
            throw new DatasetFormatException(path, $"corrupt gzip stream: {e.Message}");
        }
    }

    private static int ReadBigEndian(byte[] b) => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(b);
}
