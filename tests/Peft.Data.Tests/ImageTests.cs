using System.Buffers.Binary;
using System.Text.RegularExpressions;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Data.Tests;

public class ImageTests
{
    private static readonly SkiaImageDecoder Decoder = SkiaImageDecoder.Instance;

    private static Tensor Decode(string fixture, int channels = 3) => Decoder.Decode(Fixture.Bytes(fixture), fixture, channels);

    private static (int Width, int Height, int Channels, SKEncodedImageFormat Format) Info(string fixture) =>
        SkiaImageDecoder.ReadInfo(Fixture.Bytes(fixture), fixture);

    private static byte[] Pixels(Tensor image) => image.data<byte>().ToArray();

    private static void AssertImage(Tensor image, long height, long width, long channels)
    {
        Assert.Equal(ScalarType.Byte, image.dtype);
        Assert.Equal(new[] { height, width, channels }, image.shape);
    }

    // PIL's luma: ITU-R 601-2 in 16-bit fixed point (PixelChannels.Convert).
    private static byte Luma(int r, int g, int b) => (byte)((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);

    private static byte[] Luma(byte[] rgb) => rgb.Chunk(3).Select(p => Luma(p[0], p[1], p[2])).ToArray();

    private static void AssertAllNear(byte[] actual, byte[] expectedPixel, int tolerance)
    {
        for (var k = 0; k < actual.Length; k++)
            Assert.InRange(actual[k], expectedPixel[k % expectedPixel.Length] - tolerance, expectedPixel[k % expectedPixel.Length] + tolerance);
    }

    // Pixel (x, y) of the 4x3 fixtures is (10x + y, 100 + x, 200 - 10y).
    private static readonly int[][] Rgb4x3 = (from y in Enumerable.Range(0, 3) from x in Enumerable.Range(0, 4)
                                              select new[] { 10 * x + y, 100 + x, 200 - 10 * y }).ToArray();

    // rgba_3x2: red, green (alpha 128), blue (alpha 0) / (1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12); alpha dropped.
    private static readonly byte[] Rgba3x2AsRgb = [255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 2, 3, 5, 6, 7, 9, 10, 11];

    // palette_2x2: entries red, green, blue, (17, 34, 51), one per pixel.
    private static readonly byte[] Palette2x2 = [255, 0, 0, 0, 255, 0, 0, 0, 255, 17, 34, 51];

    [Fact]
    public void Rgb_png_decodes_to_its_exact_pixels()
    {
        using var color = Decode("rgb_4x3.png");
        AssertImage(color, 3, 4, 3);
        Assert.Equal(Rgb4x3.SelectMany(p => p.Select(v => (byte)v)), Pixels(color));

        using var native = Decode("rgb_4x3.png", channels: 0);
        Assert.Equal(Pixels(color), Pixels(native));

        using var gray = Decode("rgb_4x3.png", channels: 1);
        AssertImage(gray, 3, 4, 1);
        Assert.Equal(Rgb4x3.Select(p => Luma(p[0], p[1], p[2])), Pixels(gray));
        Assert.Equal((4, 3, 3, SKEncodedImageFormat.Png), Info("rgb_4x3.png"));
    }

    [Fact]
    public void Gray_png_keeps_one_channel_or_replicates_it()
    {
        byte[] pixels = [0, 50, 100, 150, 200, 255, 1, 2, 3, 4];
        using var gray = Decode("gray_5x2.png", channels: 0);
        AssertImage(gray, 2, 5, 1);
        Assert.Equal(pixels, Pixels(gray));
        using var rgb = Decode("gray_5x2.png");
        AssertImage(rgb, 2, 5, 3);
        Assert.Equal(pixels.SelectMany(v => new[] { v, v, v }), Pixels(rgb));
        Assert.Equal((5, 2, 1, SKEncodedImageFormat.Png), Info("gray_5x2.png"));
    }

    [Fact]
    public void Rgba_png_drops_alpha_and_palette_png_expands()
    {
        using var rgba = Decode("rgba_3x2.png", channels: 0);
        AssertImage(rgba, 2, 3, 3);
        Assert.Equal(Rgba3x2AsRgb, Pixels(rgba)); // not composited: the colour under alpha 0 is kept

        using var palette = Decode("palette_2x2.png", channels: 0);
        AssertImage(palette, 2, 2, 3);
        Assert.Equal(Palette2x2, Pixels(palette));
    }

    [Fact]
    public void Gray_png_with_alpha_is_stored_as_one_channel()
    {
        // (gray, alpha) = (10, 255), (200, 0). Skia reports it as RGBA; the IHDR colour type says gray.
        Assert.Equal((2, 1, 1, SKEncodedImageFormat.Png), Info("gray_alpha_2x1.png"));
        using var gray = Decode("gray_alpha_2x1.png", channels: 0);
        AssertImage(gray, 1, 2, 1);
        Assert.Equal([10, 200], Pixels(gray));
        using var rgb = Decode("gray_alpha_2x1.png");
        Assert.Equal([10, 10, 10, 200, 200, 200], Pixels(rgb));
    }

    [Fact]
    public void Sixteen_bit_png_keeps_the_high_byte()
    {
        // Samples 0x1234 0xABCD 0xFF00 / 0x00FF 0x8000 0xFFFF. 0x00FF tells the high byte (0) from rescaling (round(0.99) = 1).
        using var rgb = Decode("rgb16_2x1.png");
        AssertImage(rgb, 1, 2, 3);
        Assert.Equal([0x12, 0xAB, 0xFF, 0x00, 0x80, 0xFF], Pixels(rgb));

        // Gray 0x0000 0x7F80 0xFFFF, kept gray.
        using var gray = Decode("gray16_3x1.png", channels: 0);
        AssertImage(gray, 1, 3, 1);
        Assert.Equal([0x00, 0x7F, 0xFF], Pixels(gray));
    }

    [Fact]
    public void Flat_color_jpeg_decodes_within_two_levels()
    {
        // The tolerance is JPEG's encoding error on the flat (200, 100, 50) the fixture was saved from, not the decoder's.
        using var image = Decode("flat_16x16.jpg");
        AssertImage(image, 16, 16, 3);
        AssertAllNear(Pixels(image), [200, 100, 50], tolerance: 2);
        Assert.Equal((16, 16, 3, SKEncodedImageFormat.Jpeg), Info("flat_16x16.jpg"));

        using var gray = Decode("flat_16x16.jpg", channels: 1);
        AssertImage(gray, 16, 16, 1);
        AssertAllNear(Pixels(gray), [Luma(200, 100, 50)], tolerance: 2);
    }

    [Fact]
    public void Gray_and_cmyk_jpegs_decode()
    {
        using var gray = Decode("gray_8x8.jpg", channels: 0);
        AssertImage(gray, 8, 8, 1);
        AssertAllNear(Pixels(gray), [77], tolerance: 1);
        Assert.Equal((8, 8, 1, SKEncodedImageFormat.Jpeg), Info("gray_8x8.jpg"));
        using var grayAsRgb = Decode("gray_8x8.jpg");
        AssertImage(grayAsRgb, 8, 8, 3);
        AssertAllNear(Pixels(grayAsRgb), [77, 77, 77], tolerance: 1);

        // Pure red ink (C=0 M=255 Y=255 K=0, stored inverted as Adobe does) is red.
        using var cmyk = Decode("cmyk_8x8.jpg", channels: 0);
        AssertImage(cmyk, 8, 8, 3);
        AssertAllNear(Pixels(cmyk), [255, 0, 0], tolerance: 2);
    }

    [Theory]
    [InlineData("texture_16x8.jpg", "texture_16x8.rgb")]
    [InlineData("texture_16x8_progressive.jpg", "texture_16x8_progressive.rgb")]
    public void Textured_jpeg_matches_the_reference_decoder_exactly(string fixture, string reference)
    {
        // The .rgb files hold what Pillow (libjpeg-turbo, islow IDCT, fancy upsampling) decodes from the same file;
        // Skia's libjpeg-turbo decodes the same way, to the bit.
        using var image = Decode(fixture);
        AssertImage(image, 8, 16, 3);
        var expected = Fixture.Bytes(reference);
        Assert.Equal(expected, Pixels(image));

        using var gray = Decode(fixture, channels: 1);
        Assert.Equal(Luma(expected), Pixels(gray)); // PIL's convert("L") of its RGB decode
    }

    [Fact]
    public void Lossless_webp_decodes_to_its_exact_pixels_and_keeps_colour_under_alpha()
    {
        using var rgb = Decode("rgb_4x3.webp");
        AssertImage(rgb, 3, 4, 3);
        Assert.Equal(Rgb4x3.SelectMany(p => p.Select(v => (byte)v)), Pixels(rgb));
        Assert.Equal((4, 3, 3, SKEncodedImageFormat.Webp), Info("rgb_4x3.webp"));

        using var gray = Decode("rgb_4x3.webp", channels: 1);
        Assert.Equal(Rgb4x3.Select(p => Luma(p[0], p[1], p[2])), Pixels(gray));

        using var rgba = Decode("rgba_3x2.webp", channels: 0);
        AssertImage(rgba, 2, 3, 3);
        Assert.Equal(Rgba3x2AsRgb, Pixels(rgba));
    }

    [Fact]
    public void Lossy_webp_matches_libwebp_exactly()
    {
        // texture_16x8_webp.rgb is what libwebp (through Pillow) decodes from the file; VP8 decoding is bit-exact.
        using var image = Decode("texture_16x8.webp");
        AssertImage(image, 8, 16, 3);
        var expected = Fixture.Bytes("texture_16x8_webp.rgb");
        Assert.Equal(expected, Pixels(image));
        using var gray = Decode("texture_16x8.webp", channels: 1);
        Assert.Equal(Luma(expected), Pixels(gray));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Hand_written_24_bit_bmp_decodes_with_row_padding_in_either_row_order(bool topDown)
    {
        // 5 wide: 15 bytes of BGR per row, padded to 16. Pixel (x, y) = (40x + y, 7y, 255 - 50x).
        byte[] rgb = [.. from y in Enumerable.Range(0, 2) from x in Enumerable.Range(0, 5)
                         from v in new[] { 40 * x + y, 7 * y, 255 - 50 * x } select (byte)v];
        var bmp = TestData.Bmp24(5, 2, rgb, topDown);
        Assert.Equal((5, 2, 3, SKEncodedImageFormat.Bmp), SkiaImageDecoder.ReadInfo(bmp, "hand.bmp"));
        using var image = Decoder.Decode(bmp, "hand.bmp", 0);
        AssertImage(image, 2, 5, 3);
        Assert.Equal(rgb, Pixels(image));
        using var gray = Decoder.Decode(bmp, "hand.bmp", 1);
        Assert.Equal(Luma(rgb), Pixels(gray));
    }

    [Theory]
    [InlineData("palette_2x2.bmp", SKEncodedImageFormat.Bmp)]
    [InlineData("palette_2x2.gif", SKEncodedImageFormat.Gif)]
    public void Palette_bmp_and_gif_expand_to_rgb(string fixture, SKEncodedImageFormat format)
    {
        Assert.Equal((2, 2, 3, format), Info(fixture));
        using var image = Decode(fixture, channels: 0);
        AssertImage(image, 2, 2, 3);
        Assert.Equal(Palette2x2, Pixels(image));
    }

    private static string Hex(byte[] bytes) => string.Join(' ', bytes.Select(b => b.ToString("x2")));

    public static TheoryData<string, byte[], string> CorruptInputs()
    {
        var png = Fixture.Bytes("rgb_4x3.png");
        var jpeg = Fixture.Bytes("texture_16x8.jpg");
        var webp = Fixture.Bytes("texture_16x8.webp");
        var gif = Fixture.Bytes("palette_2x2.gif");
        var bmp = TestData.Bmp24(2, 2, new byte[12]);
        var badData = png.ToArray();
        badData[45] ^= 0xFF; // a byte of IDAT's compressed data
        var badCrc = png.ToArray();
        var idat = badCrc.AsSpan().IndexOf("IDAT"u8);
        badCrc[idat + 4 + BinaryPrimitives.ReadInt32BigEndian(badCrc.AsSpan(idat - 4))] ^= 0x01; // IDAT's CRC, data intact
        var random = new byte[256];
        new Random(1234).NextBytes(random);
        random[0] = 0x42; // 'B' but not "BM": no magic
        return new()
        {
            { "empty", [], "image data is empty" },
            { "random", random, $"not a JPEG, PNG, WebP, BMP or GIF image (first bytes: {Hex(random[..8])})" },
            { "text", "hello"u8.ToArray(), "not a JPEG, PNG, WebP, BMP or GIF image (first bytes: 68 65 6c 6c 6f)" },
            // A valid WBMP (Skia reads it): formats outside the list are refused, loose signatures included.
            { "WBMP", [0, 0, 4, 4, 0xFF, 0xFF, 0xFF, 0xFF], "not a JPEG, PNG, WebP, BMP or GIF image (first bytes: 00 00 04 04 ff ff ff ff)" },
            { "truncated PNG", png[..50], "invalid PNG: the image data is truncated" },
            { "PNG signature only", png[..8], "invalid PNG: the header is truncated" },
            { "PNG with corrupt pixel data", badData, "invalid PNG: the image data is corrupt" },
            { "PNG with a wrong CRC", badCrc, "invalid PNG: the image data is corrupt" },
            { "JPEG cut inside its scan", jpeg[..^40], "invalid JPEG: the image data is truncated" },
            { "JPEG cut before its scan", jpeg[..400], "invalid JPEG: the header is truncated" },
            { "JPEG markers only", jpeg[..3], "invalid JPEG: the header is truncated" },
            { "WebP cut short", webp[..^10], "invalid WebP: the image data is invalid" },
            { "WebP container only", webp[..12], "invalid WebP: the header is truncated" },
            { "BMP cut in its pixels", bmp[..^4], "invalid BMP: the image data is truncated" },
            { "BMP file header only", bmp[..14], "invalid BMP: the header is truncated" },
            { "GIF cut short", gif[..^3], "invalid GIF: the image data is truncated" },
        };
    }

    [Theory]
    [MemberData(nameof(CorruptInputs))]
    public void Corrupt_input_raises_a_named_error_and_decoding_goes_on(string what, byte[] data, string expected)
    {
        var e = Assert.Throws<InvalidDataException>(() => Decoder.Decode(data, what, 3));
        Assert.Equal($"{what}: {expected}", e.Message);
        // ReadInfo reads the header only: it fails alike on a bad header and succeeds when only the pixel data is bad.
        if (expected.Contains(": the image data ", StringComparison.Ordinal))
            _ = SkiaImageDecoder.ReadInfo(data, what); // does not throw
        else
            Assert.Equal(e.Message, Assert.Throws<InvalidDataException>(() => SkiaImageDecoder.ReadInfo(data, what)).Message);

        using var next = Decode("rgb_4x3.png");
        AssertImage(next, 3, 4, 3);
    }

    [Theory]
    [InlineData("rgb_4x3.png")]
    [InlineData("palette_2x2.png")]
    [InlineData("gray16_3x1.png")]
    [InlineData("texture_16x8.jpg")]
    [InlineData("texture_16x8_progressive.jpg")]
    [InlineData("cmyk_8x8.jpg")]
    [InlineData("texture_16x8.webp")]
    [InlineData("rgba_3x2.webp")]
    [InlineData("palette_2x2.bmp")]
    [InlineData("palette_2x2.gif")]
    public void Randomly_damaged_images_decode_or_throw_but_never_crash(string fixture)
    {
        var named = new Regex(@"^damaged: (invalid (PNG|JPEG|WebP|BMP|GIF): .+|not a JPEG, PNG, WebP, BMP or GIF image \(first bytes: [0-9a-f ]+\)"
                              + @"|(PNG|JPEG|WebP|BMP|GIF) of \d+x\d+ pixels exceeds the limit of \d+ pixels; it was not decoded)$");
        var original = Fixture.Bytes(fixture);
        var random = new Random(fixture.Length);
        var refused = 0;
        for (var trial = 0; trial < 300; trial++)
        {
            var data = original.ToArray();
            for (var flips = random.Next(1, 4); flips > 0; flips--) data[random.Next(data.Length)] = (byte)random.Next(256);
            data = data[..random.Next(data.Length / 2, data.Length + 1)];
            var channels = trial % 3 == 2 ? 1 : trial % 2 * 3;
            try
            {
                using var image = Decoder.Decode(data, "damaged", channels);
                Assert.Equal(ScalarType.Byte, image.dtype);
                Assert.Equal(3, image.dim());
                if (channels != 0) Assert.Equal(channels, image.shape[2]);
            }
            catch (InvalidDataException e)
            {
                Assert.Matches(named, e.Message);
                refused++;
            }
        }
        Assert.InRange(refused, 1, 300); // most damage is caught; what is not still decodes to a well-formed tensor
    }

    [Fact]
    public void Absurd_dimensions_are_refused_before_allocating()
    {
        var huge = Fixture.Bytes("huge_100000x100000.png"); // a valid header and no pixel data
        Assert.Equal((100_000, 100_000, 1, SKEncodedImageFormat.Png), SkiaImageDecoder.ReadInfo(huge, "huge.png"));
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        Assert.Equal("huge.png: PNG of 100000x100000 pixels exceeds the limit of 67108864 pixels; it was not decoded",
            Assert.Throws<InvalidDataException>(() => Decoder.Decode(huge, "huge.png", 3)).Message);
        Assert.InRange(GC.GetAllocatedBytesForCurrentThread() - allocated, 0, 1 << 20); // 10^10 pixels were never asked for

        // The same JPEG with its SOF0 frame header claiming 60000 x 60000.
        var jpeg = Fixture.Bytes("flat_16x16.jpg");
        var sof = jpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]);
        Assert.True(sof > 0);
        foreach (var at in new[] { sof + 5, sof + 7 }) (jpeg[at], jpeg[at + 1]) = (0xEA, 0x60); // height, width
        Assert.Equal("big.jpg: JPEG of 60000x60000 pixels exceeds the limit of 67108864 pixels; it was not decoded",
            Assert.Throws<InvalidDataException>(() => Decoder.Decode(jpeg, "big.jpg", 3)).Message);
    }

    [Fact]
    public void The_pixel_limit_is_configurable_and_defaults_to_64_megapixels()
    {
        Assert.Equal(64L * 1024 * 1024, SkiaImageDecoder.Instance.MaxPixels);
        Assert.Equal(SkiaImageDecoder.DefaultMaxPixels, new SkiaImageDecoder().MaxPixels);

        var png = Fixture.Bytes("rgb_4x3.png"); // 12 pixels
        Assert.Equal("small.png: PNG of 4x3 pixels exceeds the limit of 11 pixels; it was not decoded",
            Assert.Throws<InvalidDataException>(() => new SkiaImageDecoder(maxPixels: 11).Decode(png, "small.png", 3)).Message);
        using var exact = new SkiaImageDecoder(maxPixels: 12).Decode(png, "small.png", 3);
        AssertImage(exact, 3, 4, 3);

        Assert.Throws<ArgumentOutOfRangeException>(() => new SkiaImageDecoder(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SkiaImageDecoder(1L << 30)); // RGBA would not fit one .NET array
    }

    [Fact]
    public void File_errors_name_the_file_and_bad_channel_counts_are_refused()
    {
        using var dir = new TempDir();
        var path = dir.File("broken.png");
        File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        var ds = new FileImageDataset("t", [new ImageFile(path, 0), new ImageFile(dir.File("absent.png"), 0)], ["a"], SkiaImageDecoder.AllFormats);
        var e = Assert.Throws<BadImageException>(() => ds.LoadImage(0));
        Assert.Equal(path, e.SourceName);
        Assert.Equal($"{path}: not a JPEG, PNG, WebP, BMP or GIF image (first bytes: 89 50 4e 47 01 02 03)", e.Message);
        Assert.IsType<InvalidDataException>(e.InnerException);
        Assert.Equal($"{dir.File("absent.png")}: image file not found", Assert.Throws<BadImageException>(() => ds.LoadImage(1)).Message);

        var bad = Assert.Throws<ArgumentOutOfRangeException>(() => Decoder.Decode(Fixture.Bytes("rgb_4x3.png"), "x.png", 4));
        Assert.Equal("channels", bad.ParamName);
    }

    [Fact]
    public void Every_format_through_AllFormats_and_the_loader_and_bad_files_are_skipped_and_counted()
    {
        using var dir = new TempDir();
        string Put(string name, byte[] bytes)
        {
            var p = dir.File(name);
            File.WriteAllBytes(p, bytes);
            return p;
        }
        var jpeg = Fixture.Bytes("texture_16x8.jpg");
        var random = new byte[100];
        new Random(5).NextBytes(random);
        random[0] = 0; // no magic
        string[] paths =
        [
            Put("0.png", Fixture.Bytes("rgb_4x3.png")),
            Put("1.jpg", jpeg[..^40]), // truncated
            Put("2.webp", Fixture.Bytes("rgb_4x3.webp")),
            Put("3.png", []), // empty
            Put("4.bmp", TestData.Bmp24(4, 3, Rgb4x3.SelectMany(p => p.Select(v => (byte)v)).ToArray())),
            Put("5.jpg", random),
            Put("6.png", Fixture.Bytes("huge_100000x100000.png")),
            Put("7.ppm", TestData.Netpbm(4, 3, Rgb4x3.SelectMany(p => p.Select(v => (byte)v)).ToArray())),
        ];
        var ds = new FileImageDataset("mixed", paths.Select((p, i) => new ImageFile(p, i % 2)).ToArray(), ["a", "b"], SkiaImageDecoder.AllFormats);
        var none = new TransformPipeline(Normalize.None);

        var strict = new DataLoader(ds, none, new DataLoaderOptions { BatchSize = 2, Shuffle = false, Workers = 2 });
        var e = Assert.Throws<BadImageException>(() => strict.Epoch(0).ToList().ForEach(b => b.Dispose()));
        Assert.Equal(paths[1], e.SourceName);
        Assert.Equal($"{paths[1]}: invalid JPEG: the image data is truncated", e.Message);

        var lenient = new DataLoader(ds, none, new DataLoaderOptions { BatchSize = 2, Shuffle = false, Workers = 2, SkipBadImages = true });
        var batches = lenient.Epoch(0).ToList();
        try
        {
            Assert.Equal([[0], [2], [4], [7]], batches.Select(b => b.Indices));
            // PNG, lossless WebP, BMP and PPM of the same 4x3 image give the same [0, 1] tensor.
            var expected = Rgb4x3.SelectMany(p => p).Select(v => v / 255f).ToArray(); // HWC order
            foreach (var b in batches)
            {
                Assert.Equal([1L, 3, 3, 4], b.Images.shape);
                using var chw = b.Images[0];
                using var hwc = chw.permute(1, 2, 0);
                Assert.Equal(expected, hwc.data<float>().ToArray());
            }
        }
        finally
        {
            foreach (var b in batches) b.Dispose();
        }
        Assert.Equal(4, lenient.SkippedImages);
        Assert.Equal(new[] { paths[1], paths[3], paths[5], paths[6] }.Order(StringComparer.Ordinal), lenient.SkippedSources);
        Assert.Equal(4, lenient.Stats.Samples);
    }

    [Fact]
    public void One_decoder_on_many_threads_gives_the_serial_results()
    {
        string[] fixtures =
        [
            "rgb_4x3.png", "gray_5x2.png", "rgba_3x2.png", "palette_2x2.png", "rgb16_2x1.png", "gray_alpha_2x1.png", "texture_16x8.jpg",
            "texture_16x8_progressive.jpg", "cmyk_8x8.jpg", "gray_8x8.jpg", "texture_16x8.webp", "rgba_3x2.webp", "palette_2x2.bmp", "palette_2x2.gif",
        ];
        var bytes = fixtures.Select(Fixture.Bytes).ToArray();
        var expected = new byte[fixtures.Length][][];
        for (var f = 0; f < fixtures.Length; f++)
        {
            expected[f] = new byte[3][];
            foreach (var channels in new[] { 0, 1, 3 })
                using (var image = Decoder.Decode(bytes[f], fixtures[f], channels))
                    expected[f][channels == 3 ? 2 : channels] = Pixels(image);
        }
        var truncated = bytes[6][..^40];
        var failures = 0;
        Parallel.For(0, 600, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            var f = i % fixtures.Length;
            var channels = i / fixtures.Length % 3;
            using (var image = Decoder.Decode(bytes[f], fixtures[f], channels == 2 ? 3 : channels))
                Assert.Equal(expected[f][channels], Pixels(image));
            var e = Assert.Throws<InvalidDataException>(() => Decoder.Decode(truncated, $"cut{i}.jpg", 3));
            Assert.Equal($"cut{i}.jpg: invalid JPEG: the image data is truncated", e.Message); // errors stay with their call
            Interlocked.Increment(ref failures);
        });
        Assert.Equal(600, failures);
    }
}
