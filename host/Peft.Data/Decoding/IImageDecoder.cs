using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Data;

/// <summary>
/// Turns encoded image bytes into a uint8 tensor of shape [H, W, C]. <see cref="SkiaImageDecoder"/> reads JPEG, PNG,
/// WebP, BMP and GIF; <see cref="NetpbmDecoder"/> reads binary PGM/PPM. The loader calls one decoder from several worker threads at once, so implementations
/// must be thread-safe (stateless ones are).
/// </summary>
public interface IImageDecoder
{
    /// <param name="bytes">The encoded file.</param>
    /// <param name="sourceName">The file the bytes came from, for error messages.</param>
    /// <param name="channels">1 (gray) or 3 (RGB) to convert to, or 0 to keep the stored channels.</param>
    /// <exception cref="InvalidDataException">The bytes are not a valid image (the message names <paramref name="sourceName"/>).</exception>
    Tensor Decode(ReadOnlySpan<byte> bytes, string sourceName, int channels);

    /// <summary>What this decoder, and the dataset reading files for it, accept.</summary>
    ImageLimits Limits => ImageLimits.Default;
}

/// <summary>
/// Bounds on the memory one image may take, whatever its file holds: the file's size (read only when it is a regular
/// file no larger than <see cref="MaxFileBytes"/>), the pixels its header declares (<see cref="MaxPixels"/>, checked before
/// any pixel memory is allocated), and, when <see cref="MinSide"/> is given, large images are shrunk while they are decoded
/// to the smallest size whose sides are still at least <see cref="MinSide"/> (the size the pipeline resizes to), so their
/// full-resolution tensor is never made.
/// </summary>
/// <param name="MaxFileBytes">Largest file read, in bytes.</param>
/// <param name="MaxPixels">Largest width × height decoded, 1 to 2^29 (minus a little: RGBA pixels fill one .NET array).</param>
/// <param name="MinSide">The side the pipeline resizes to (0: decode at full size).</param>
public sealed record ImageLimits(long MaxFileBytes = ImageLimits.DefaultMaxFileBytes, long MaxPixels = ImageLimits.DefaultMaxPixels, int MinSide = 0)
{
    /// <summary>256 MiB: the size of an uncompressed image at the pixel limit, and small enough that workers reading several at once stay bounded.</summary>
    public const long DefaultMaxFileBytes = 256L << 20;

    /// <summary>64 megapixels (2^26): an 8192×8192 image, far above any benchmark's, far below what exhausts memory.</summary>
    public const long DefaultMaxPixels = 64L << 20;

    /// <summary>
    /// Images above 4 megapixels (2048×2048, larger than any VTAB-1k or FGVC image) are shrunk while decoding when
    /// <see cref="MinSide"/> allows; smaller ones decode exactly as stored, so benchmark pipelines see the pixels they expect.
    /// </summary>
    public const long LargeImagePixels = 4L << 20;

    // Pixels are decoded as RGBA into one .NET array, which holds at most Array.MaxLength bytes.
    internal static readonly long LargestMaxPixels = Array.MaxLength / 4;

    public static ImageLimits Default { get; } = new();

    public long MaxFileBytes { get; } = MaxFileBytes >= 1 ? MaxFileBytes
        : throw new ArgumentOutOfRangeException(nameof(MaxFileBytes), MaxFileBytes, "expected at least 1 byte");

    public long MaxPixels { get; } = MaxPixels >= 1 && MaxPixels <= LargestMaxPixels ? MaxPixels
        : throw new ArgumentOutOfRangeException(nameof(MaxPixels), MaxPixels, $"expected 1 to {LargestMaxPixels} pixels");

    public int MinSide { get; } = MinSide >= 0 ? MinSide : throw new ArgumentOutOfRangeException(nameof(MinSide), MinSide, "expected 0 or more");

    /// <summary>
    /// How many times a width × height image is halved while decoding: as often as both sides stay at least
    /// <see cref="MinSide"/>, for images above <see cref="LargeImagePixels"/>; otherwise 0.
    /// </summary>
    public int Halvings(int width, int height)
    {
        if (MinSide <= 0 || (long)width * height <= LargeImagePixels) return 0;
        var k = 0;
        while ((width >> (k + 1)) >= MinSide && (height >> (k + 1)) >= MinSide) k++;
        return k;
    }

    /// <summary>The "exceeds the limit" error of an image declaring more than <see cref="MaxPixels"/> pixels.</summary>
    internal InvalidDataException TooManyPixels(string sourceName, string format, int width, int height) =>
        new($"{sourceName}: {format} of {width}x{height} pixels exceeds the limit of {MaxPixels} pixels; it was not decoded");
}

/// <summary>Box-filter halving of interleaved uint8 pixels (HWC), the shrinking behind <see cref="ImageLimits.MinSide"/>.</summary>
public static class PixelHalving
{
    /// <summary>
    /// Halves <paramref name="times"/> times, each output pixel the rounded mean of a 2×2 block (an odd last row or column is
    /// dropped, as libjpeg's DCT scaling covers whole blocks). Returns the pixels and their new size.
    /// </summary>
    public static (byte[] Pixels, int Width, int Height) Halve(byte[] pixels, int width, int height, int channels, int times)
    {
        for (var t = 0; t < times; t++)
        {
            var (w, h) = (width / 2, height / 2);
            var result = new byte[(long)w * h * channels];
            var stride = (long)width * channels;
            for (var y = 0; y < h; y++)
            {
                var top = 2L * y * stride;
                for (var x = 0; x < w; x++)
                    for (var c = 0; c < channels; c++)
                    {
                        var at = top + 2L * x * channels + c;
                        var sum = pixels[at] + pixels[at + channels] + pixels[at + stride] + pixels[at + stride + channels];
                        result[((long)y * w + x) * channels + c] = (byte)((sum + 2) >> 2);
                    }
            }
            (pixels, width, height) = (result, w, h);
        }
        return (pixels, width, height);
    }
}
