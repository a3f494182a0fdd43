using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Data;

/// <summary>
/// Binary Netpbm: P5 (PGM, gray) and P6 (PPM, RGB), maxval 1..65535 (16-bit samples are big-endian),
/// rescaled to 0..255. Bytes in another format go to <paramref name="fallback"/> when one is given,
/// so a JPEG/PNG decoder can be chained behind this one; the chain keeps the fallback's <see cref="Limits"/>.
/// </summary>
public sealed class NetpbmDecoder(IImageDecoder? fallback = null) : IImageDecoder
{
    public ImageLimits Limits => fallback?.Limits ?? ImageLimits.Default;

    /// <summary>True when the bytes start with a binary PGM or PPM magic number.</summary>
    public static bool IsNetpbm(ReadOnlySpan<byte> bytes) => bytes.Length >= 2 && bytes[0] == 'P' && bytes[1] is (byte)'5' or (byte)'6';

    public Tensor Decode(ReadOnlySpan<byte> bytes, string sourceName, int channels)
    {
        if (channels is not (0 or 1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "expected 0 (as stored), 1 or 3");
        if (!IsNetpbm(bytes))
            return fallback?.Decode(bytes, sourceName, channels)
                ?? throw new InvalidDataException($"{sourceName}: not a binary PGM/PPM file (expected magic P5 or P6)");

        var stored = bytes[1] == '5' ? 1 : 3;
        var pos = 2;
        var width = ReadHeaderNumber(bytes, ref pos, sourceName, "width");
        var height = ReadHeaderNumber(bytes, ref pos, sourceName, "height");
        var maxval = ReadHeaderNumber(bytes, ref pos, sourceName, "maxval");
        if (width < 1 || height < 1 || maxval is < 1 or > 65535)
            throw new InvalidDataException($"{sourceName}: invalid header (width {width}, height {height}, maxval {maxval})");
        if ((long)width * height > Limits.MaxPixels) throw Limits.TooManyPixels(sourceName, stored == 1 ? "PGM" : "PPM", width, height);
        if (pos >= bytes.Length || !IsWhitespace(bytes[pos]))
            throw new InvalidDataException($"{sourceName}: expected one whitespace byte after maxval");
        pos++; // exactly one whitespace byte separates the header from the raster

        var samples = (long)width * height * stored;
        var sampleBytes = maxval > 255 ? 2 : 1;
        var raster = bytes[pos..];
        if (raster.Length < samples * sampleBytes)
            throw new InvalidDataException($"{sourceName}: raster truncated: {width}x{height}x{stored} needs {samples * sampleBytes} bytes, found {raster.Length}");

        var pixels = new byte[samples];
        for (var k = 0; k < samples; k++)
        {
            var v = sampleBytes == 1 ? raster[k] : (raster[2 * k] << 8) | raster[2 * k + 1];
            pixels[k] = maxval == 255 ? (byte)v : (byte)((v * 255 + maxval / 2) / maxval);
        }
        (pixels, width, height) = PixelHalving.Halve(pixels, width, height, stored, Limits.Halvings(width, height));
        var target = channels == 0 ? stored : channels;
        var converted = PixelChannels.Convert(pixels, stored, target);
        return torch.tensor(converted, [height, width, target], ScalarType.Byte);
    }

    private static int ReadHeaderNumber(ReadOnlySpan<byte> bytes, ref int pos, string sourceName, string field)
    {
        // Whitespace and '#' comments (to the end of the line) may precede each header field.
        while (pos < bytes.Length && (IsWhitespace(bytes[pos]) || bytes[pos] == '#'))
        {
            if (bytes[pos] == '#')
                while (pos < bytes.Length && bytes[pos] != '\n') pos++;
            else pos++;
        }
        var start = pos;
        long value = 0;
        while (pos < bytes.Length && bytes[pos] is >= (byte)'0' and <= (byte)'9' && pos - start < 9)
            value = value * 10 + (bytes[pos++] - '0');
        if (pos == start)
            throw new InvalidDataException($"{sourceName}: header ends before the {field} field");
        return (int)value;
    }

    private static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or 0x0B or 0x0C;
}

/// <summary>Channel conversion of interleaved uint8 pixels (HWC).</summary>
public static class PixelChannels
{
    /// <summary>
    /// Converts between 1 (gray), 3 (RGB) and 4 (RGBA) channels: gray is replicated, alpha dropped, and
    /// RGB to gray uses ITU-R 601-2 luma in PIL's fixed-point form, L = (19595 R + 38470 G + 7471 B + 2^15) >> 16.
    /// </summary>
    public static byte[] Convert(byte[] pixels, int from, int to)
    {
        if (from == to) return pixels;
        var n = pixels.Length / from;
        var result = new byte[n * to];
        for (var p = 0; p < n; p++)
        {
            var s = p * from;
            if (to == 1)
                result[p] = from == 1 ? pixels[s]
                    : (byte)((19595 * pixels[s] + 38470 * pixels[s + 1] + 7471 * pixels[s + 2] + 0x8000) >> 16);
            else
                for (var c = 0; c < to; c++)
                    result[p * to + c] = c >= 3 ? (byte)255 : from == 1 ? pixels[s] : pixels[s + c];
        }
        return result;
    }
}
