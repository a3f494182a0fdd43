using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Data.Tests;

/// <summary>The files of Fixtures/, made by tests/fixtures-src/make_fixtures.py.</summary>
internal static class Fixture
{
    public static string Path(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "Fixtures", name);
    public static byte[] Bytes(string name) => System.IO.File.ReadAllBytes(Path(name));
}

/// <summary>A temporary folder, deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("peft-data-").FullName;

    public string File(params string[] parts)
    {
        var p = System.IO.Path.Combine([Path, .. parts]);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        return p;
    }

    public string Write(string relative, string text)
    {
        var p = File(relative);
        System.IO.File.WriteAllText(p, text);
        return p;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

public static class TestData
{
    /// <summary>Writes an IDX file byte by byte: big-endian magic, big-endian dims, the data; gzip'd if asked.</summary>
    public static void WriteIdx(string path, int magic, int[] dims, byte[] data, bool gzip = true)
    {
        using var file = System.IO.File.Create(path);
        using Stream s = gzip ? new GZipStream(file, CompressionLevel.Fastest) : file;
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, magic);
        s.Write(word);
        foreach (var d in dims)
        {
            BinaryPrimitives.WriteInt32BigEndian(word, d);
            s.Write(word);
        }
        s.Write(data);
    }

    /// <summary>A binary PPM (P6, 3 channels) or PGM (P5, 1 channel) with the given interleaved pixels.</summary>
    public static byte[] Netpbm(int width, int height, byte[] pixels, string? comment = null)
    {
        var channels = pixels.Length / (width * height);
        var header = $"P{(channels == 1 ? 5 : 6)}\n{(comment is null ? "" : "# " + comment + "\n")}{width} {height}\n255\n";
        return [.. Encoding.ASCII.GetBytes(header), .. pixels];
    }

    /// <summary>A w×h RGB PPM whose every pixel is (r, g, b).</summary>
    public static byte[] SolidPpm(int width, int height, byte r, byte g, byte b) =>
        Netpbm(width, height, Enumerable.Repeat(new[] { r, g, b }, width * height).SelectMany(p => p).ToArray());

    /// <summary>
    /// A 24-bit uncompressed BMP of interleaved RGB pixels (top row first): a 14-byte file header, a 40-byte
    /// BITMAPINFOHEADER, then rows of BGR triplets padded to 4 bytes, stored bottom-up, or top-down when the header's
    /// height is negative.
    /// </summary>
    public static byte[] Bmp24(int width, int height, byte[] rgb, bool topDown = false)
    {
        var stride = (width * 3 + 3) / 4 * 4;
        var bmp = new byte[54 + stride * height];
        var s = bmp.AsSpan();
        "BM"u8.CopyTo(s);
        BinaryPrimitives.WriteInt32LittleEndian(s[2..], bmp.Length);
        BinaryPrimitives.WriteInt32LittleEndian(s[10..], 54); // pixel data offset
        BinaryPrimitives.WriteInt32LittleEndian(s[14..], 40); // header size
        BinaryPrimitives.WriteInt32LittleEndian(s[18..], width);
        BinaryPrimitives.WriteInt32LittleEndian(s[22..], topDown ? -height : height);
        BinaryPrimitives.WriteInt16LittleEndian(s[26..], 1); // planes
        BinaryPrimitives.WriteInt16LittleEndian(s[28..], 24); // bits per pixel; compression (30..34) is 0, BI_RGB
        BinaryPrimitives.WriteInt32LittleEndian(s[34..], stride * height);
        for (var y = 0; y < height; y++)
        {
            var row = 54 + stride * (topDown ? y : height - 1 - y);
            for (var x = 0; x < width; x++)
                for (var c = 0; c < 3; c++)
                    bmp[row + 3 * x + c] = rgb[3 * (y * width + x) + 2 - c];
        }
        return bmp;
    }
}

/// <summary>
/// An in-memory dataset whose image i is an 8×8×3 uint8 pattern determined by i, counting LoadImage calls.
/// </summary>
public sealed class PatternDataset(int count, int classCount, int size = 8, int delayMs = 0) : IImageDataset
{
    private int _loads;

    public int Loads => Volatile.Read(ref _loads);
    public string Name => "pattern";
    public int Count => count;
    public int ClassCount => classCount;
    public IReadOnlyList<string> ClassNames => Enumerable.Range(0, classCount).Select(c => $"c{c}").ToArray();
    public int Label(int index) => index % classCount;
    public string SourceName(int index) => $"pattern#{index}";

    public Tensor LoadImage(int index)
    {
        Interlocked.Increment(ref _loads);
        if (delayMs > 0) Thread.Sleep(delayMs);
        var pixels = new byte[size * size * 3];
        for (var k = 0; k < pixels.Length; k++) pixels[k] = (byte)((index * 31 + k * 7) % 256);
        return torch.tensor(pixels, [size, size, 3], ScalarType.Byte);
    }
}
