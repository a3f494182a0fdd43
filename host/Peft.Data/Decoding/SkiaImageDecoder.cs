using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Data;

/// <summary>
/// JPEG, PNG, WebP, BMP and GIF (first frame) through SkiaSharp, into uint8 tensors [H, W, C]. The format is told by
/// the magic bytes; other formats Skia knows (ICO, WBMP, HEIF, ...) are refused, since loose signatures such as WBMP's
/// would otherwise turn arbitrary bytes into an image. The header is read first and an image declaring more than
/// <see cref="MaxPixels"/> pixels is refused before any pixel memory is allocated.
/// <para>
/// <c>channels</c>: 0 keeps the stored channels (1 for gray and gray+alpha sources, 3 for colour), 1 converts to gray
/// (ITU-R 601 luma, PIL's fixed point), 3 to RGB. Alpha is dropped without compositing; 16-bit PNG samples keep their
/// high byte; palettes are expanded. Pixels are the stored values: no colour management (ICC, gAMA) and no EXIF
/// rotation, as PIL's <c>Image.open(...).convert()</c>.
/// </para>
/// <para>
/// Empty, truncated, corrupt or non-image bytes raise <see cref="InvalidDataException"/> naming the source. A JPEG whose
/// entropy-coded data is damaged but complete decodes with damaged pixels: Skia, like PIL, treats libjpeg's
/// corrupt-data warnings as recoverable. Thread-safe: the decoder has no mutable state and every call has its own codec.
/// </para>
/// </summary>
public sealed class SkiaImageDecoder : IImageDecoder
{
    /// <summary>64 megapixels (2^26): an 8192×8192 image, far above any benchmark's, far below what exhausts memory.</summary>
    public const long DefaultMaxPixels = ImageLimits.DefaultMaxPixels;

    private static readonly byte[] PngMagic = [0x89, (byte)'P', (byte)'N', (byte)'G', (byte)'\r', (byte)'\n', 0x1A, (byte)'\n'];

    public static readonly SkiaImageDecoder Instance = new();

    /// <summary>Netpbm first (P5/P6), then everything this decoder reads: every extension ImageFolder accepts.</summary>
    public static IImageDecoder AllFormats { get; } = new NetpbmDecoder(Instance);

    /// <param name="maxPixels">Largest width × height accepted, 1 to 2^29 (minus a little).</param>
    public SkiaImageDecoder(long maxPixels = DefaultMaxPixels) : this(new ImageLimits(MaxPixels: maxPixels))
    {
    }

    public SkiaImageDecoder(ImageLimits limits) => Limits = limits;

    public ImageLimits Limits { get; }

    public long MaxPixels => Limits.MaxPixels;

    /// <summary>
    /// The size, the channels <c>channels = 0</c> decodes to, and the format, from the header alone (no pixel limit
    /// applies: nothing is allocated).
    /// </summary>
    public static (int Width, int Height, int Channels, SKEncodedImageFormat Format) ReadInfo(ReadOnlySpan<byte> bytes, string sourceName)
    {
        using var codec = Open(bytes, sourceName);
        var (width, height) = CheckedSize(codec, sourceName);
        return (width, height, StoredChannels(codec, bytes), codec.EncodedFormat);
    }

    public Tensor Decode(ReadOnlySpan<byte> bytes, string sourceName, int channels)
    {
        if (channels is not (0 or 1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "expected 0 (as stored), 1 or 3");
        using var codec = Open(bytes, sourceName);
        var (width, height) = CheckedSize(codec, sourceName);
        if ((long)width * height > MaxPixels) throw Limits.TooManyPixels(sourceName, Name(codec.EncodedFormat), width, height);

        // A large image is shrunk on its way in (ImageLimits.MinSide): libjpeg scales by 1/2, 1/4 or 1/8 inside its DCT, so
        // such a JPEG is never held at full resolution; other formats decode whole and are halved before any tensor is made.
        var halvings = Limits.Halvings(width, height);
        var (decodeWidth, decodeHeight) = (width, height);
        var scaled = 0;
        if (codec.EncodedFormat == SKEncodedImageFormat.Jpeg)
            for (var k = Math.Min(halvings, 3); k > 0 && scaled == 0; k--)
            {
                var size = codec.GetScaledDimensions(1f / (1 << k));
                if (size.Width >= width >> k && size.Height >= height >> k && size.Width < width)
                    ((decodeWidth, decodeHeight), scaled) = ((size.Width, size.Height), k);
            }

        // Gray sources decode to Gray8 directly; everything else (gray+alpha included) to unpremultiplied RGBA, whose
        // luma is exact for gray pixels (the weights sum to 2^16).
        var from = codec.Info.ColorType == SKColorType.Gray8 ? 1 : 4;
        var info = new SKImageInfo(decodeWidth, decodeHeight, from == 1 ? SKColorType.Gray8 : SKColorType.Rgba8888,
            from == 1 ? SKAlphaType.Opaque : SKAlphaType.Unpremul);
        var pixels = new byte[(long)decodeWidth * decodeHeight * from];
        var result = codec.GetPixels(info, pixels);
        // IncompleteInput still fills the missing rows (with zeros): a truncated file is an error, never a partial image.
        if (result != SKCodecResult.Success)
            throw new InvalidDataException($"{sourceName}: invalid {Name(codec.EncodedFormat)}: {Describe(result)}");
        (pixels, decodeWidth, decodeHeight) = PixelHalving.Halve(pixels, decodeWidth, decodeHeight, from, halvings - scaled);

        var target = channels == 0 ? StoredChannels(codec, bytes) : channels;
        var converted = PixelChannels.Convert(pixels, from, target);
        // Native storage rather than torch.tensor(byte[]), which would pin a managed copy for the tensor's lifetime.
        var image = torch.empty([decodeHeight, decodeWidth, target], ScalarType.Byte);
        converted.CopyTo(image.bytes);
        return image;
    }

    /// <summary>The codec of a supported format; the header has been parsed, no pixel decoded.</summary>
    private static SKCodec Open(ReadOnlySpan<byte> bytes, string sourceName)
    {
        if (bytes.IsEmpty) throw new InvalidDataException($"{sourceName}: image data is empty");
        var format = Sniff(bytes)
            ?? throw new InvalidDataException($"{sourceName}: not a JPEG, PNG, WebP, BMP or GIF image (first bytes: {Hex(bytes[..Math.Min(bytes.Length, 8)])})");
        using var data = SKData.CreateCopy(bytes);
        // The codec owns the stream, which holds its own reference to the data (freed with the codec, or at once on failure).
        var codec = SKCodec.Create(new SKMemoryStream(data), out var result);
        if (codec is null)
            throw new InvalidDataException(result == SKCodecResult.IncompleteInput
                ? $"{sourceName}: invalid {Name(format)}: the header is truncated"
                : $"{sourceName}: invalid {Name(format)}: the header is unreadable ({result})");
        return codec;
    }

    private static SKEncodedImageFormat? Sniff(ReadOnlySpan<byte> b)
    {
        if (b.StartsWith(PngMagic)) return SKEncodedImageFormat.Png;
        if (b is [0xFF, 0xD8, 0xFF, ..]) return SKEncodedImageFormat.Jpeg;
        if (b.Length >= 12 && b[..4].SequenceEqual("RIFF"u8) && b[8..12].SequenceEqual("WEBP"u8)) return SKEncodedImageFormat.Webp;
        if (b.StartsWith("BM"u8)) return SKEncodedImageFormat.Bmp;
        if (b.StartsWith("GIF87a"u8) || b.StartsWith("GIF89a"u8)) return SKEncodedImageFormat.Gif;
        return null;
    }

    private static (int Width, int Height) CheckedSize(SKCodec codec, string sourceName)
    {
        var (width, height) = (codec.Info.Width, codec.Info.Height);
        if (width <= 0 || height <= 0)
            throw new InvalidDataException($"{sourceName}: invalid {Name(codec.EncodedFormat)}: the header gives a size of {width}x{height} pixels");
        return (width, height);
    }

    /// <summary>
    /// 1 for gray sources, 3 for colour. Skia reports a gray+alpha PNG as RGBA, so PNGs are judged by their IHDR colour
    /// type (byte 25: 0 gray, 4 gray+alpha), as libspng did; Skia has already checked that IHDR comes first.
    /// </summary>
    private static int StoredChannels(SKCodec codec, ReadOnlySpan<byte> bytes) =>
        codec.Info.ColorType == SKColorType.Gray8 || (codec.EncodedFormat == SKEncodedImageFormat.Png && bytes[25] is 0 or 4) ? 1 : 3;

    private static string Name(SKEncodedImageFormat format) => format switch
    {
        SKEncodedImageFormat.Jpeg => "JPEG",
        SKEncodedImageFormat.Png => "PNG",
        SKEncodedImageFormat.Webp => "WebP",
        SKEncodedImageFormat.Bmp => "BMP",
        SKEncodedImageFormat.Gif => "GIF",
        _ => format.ToString(),
    };

    private static string Describe(SKCodecResult result) => result switch
    {
        SKCodecResult.IncompleteInput => "the image data is truncated",
        SKCodecResult.ErrorInInput => "the image data is corrupt",
        SKCodecResult.InvalidInput => "the image data is invalid",
        _ => $"decoding failed ({result})",
    };

    private static string Hex(ReadOnlySpan<byte> bytes) => string.Join(' ', bytes.ToArray().Select(b => b.ToString("x2")));
}
