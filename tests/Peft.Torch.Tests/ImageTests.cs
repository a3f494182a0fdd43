using Peft.Torch.Imaging;

namespace Peft.Torch.Tests;

public class ImageTests
{
    private static Tensor Decode(string fixture, int channels = 3) => ImageDecoder.DecodeFile(Fixture.Path(fixture), channels);

    private static void AssertImage(Tensor image, long height, long width, long channels)
    {
        Assert.Equal(ScalarType.Byte, image.dtype);
        Assert.Equal(new[] { height, width, channels }, image.shape);
    }

    // The luma the decoder computes: BT.601 in libjpeg's fixed point.
    private static byte Luma(int r, int g, int b) => (byte)((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);

    private static void AssertAllNear(byte[] actual, byte[] expectedPixel, int tolerance)
    {
        for (var k = 0; k < actual.Length; k++)
            Assert.InRange(actual[k], expectedPixel[k % expectedPixel.Length] - tolerance, expectedPixel[k % expectedPixel.Length] + tolerance);
    }

    [Fact]
    public void Rgb_png_decodes_to_its_exact_pixels()
    {
        // Pixel (x, y) of the 4x3 fixture is (10x + y, 100 + x, 200 - 10y).
        var rgb = (from y in Enumerable.Range(0, 3) from x in Enumerable.Range(0, 4)
                   select new[] { 10 * x + y, 100 + x, 200 - 10 * y }).ToArray();
        using var color = Decode("rgb_4x3.png");
        AssertImage(color, 3, 4, 3);
        Assert.Equal(rgb.SelectMany(p => p.Select(v => (byte)v)), color.data<byte>());

        using var native = Decode("rgb_4x3.png", channels: 0);
        Assert.Equal(color.data<byte>(), native.data<byte>());

        using var gray = Decode("rgb_4x3.png", channels: 1);
        AssertImage(gray, 3, 4, 1);
        Assert.Equal(rgb.Select(p => Luma(p[0], p[1], p[2])), gray.data<byte>());
        Assert.Equal((4, 3, 3, ImageFormat.Png), ImageDecoder.ReadInfoFile(Fixture.Path("rgb_4x3.png")));
    }

    [Fact]
    public void Gray_png_keeps_one_channel_or_replicates_it()
    {
        byte[] pixels = [0, 50, 100, 150, 200, 255, 1, 2, 3, 4];
        using var gray = Decode("gray_5x2.png", channels: 0);
        AssertImage(gray, 2, 5, 1);
        Assert.Equal(pixels, gray.data<byte>());
        using var rgb = Decode("gray_5x2.png");
        AssertImage(rgb, 2, 5, 3);
        Assert.Equal(pixels.SelectMany(v => new[] { v, v, v }), rgb.data<byte>());
        Assert.Equal((5, 2, 1, ImageFormat.Png), ImageDecoder.ReadInfo(Fixture.Bytes("gray_5x2.png")));
    }

    [Fact]
    public void Rgba_png_drops_alpha_and_palette_png_expands()
    {
        using var rgba = Decode("rgba_3x2.png", channels: 0);
        AssertImage(rgba, 2, 3, 3);
        Assert.Equal(new byte[] { 255, 0, 0, 0, 255, 0, 0, 0, 255, 1, 2, 3, 5, 6, 7, 9, 10, 11 }, rgba.data<byte>());

        using var palette = Decode("palette_2x2.png", channels: 0);
        AssertImage(palette, 2, 2, 3);
        Assert.Equal(new byte[] { 255, 0, 0, 0, 255, 0, 0, 0, 255, 17, 34, 51 }, palette.data<byte>());
    }

    [Fact]
    public void Sixteen_bit_png_keeps_the_high_byte()
    {
        // Samples 0x1234 0xABCD 0xFF00 / 0x00FF 0x8000 0xFFFF.
        using var rgb = Decode("rgb16_2x1.png");
        AssertImage(rgb, 1, 2, 3);
        Assert.Equal(new byte[] { 0x12, 0xAB, 0xFF, 0x00, 0x80, 0xFF }, rgb.data<byte>());

        // Gray 0x0000 0x7F80 0xFFFF, kept gray.
        using var gray = Decode("gray16_3x1.png", channels: 0);
        AssertImage(gray, 1, 3, 1);
        Assert.Equal(new byte[] { 0x00, 0x7F, 0xFF }, gray.data<byte>());
    }

    [Fact]
    public void Flat_color_jpeg_decodes_within_two_levels()
    {
        using var image = Decode("flat_16x16.jpg");
        AssertImage(image, 16, 16, 3);
        AssertAllNear(image.data<byte>(), [200, 100, 50], tolerance: 2);
        Assert.Equal((16, 16, 3, ImageFormat.Jpeg), ImageDecoder.ReadInfoFile(Fixture.Path("flat_16x16.jpg")));

        using var gray = Decode("flat_16x16.jpg", channels: 1);
        AssertImage(gray, 16, 16, 1);
        AssertAllNear(gray.data<byte>(), [Luma(200, 100, 50)], tolerance: 2);
    }

    [Fact]
    public void Gray_and_cmyk_jpegs_decode()
    {
        using var gray = Decode("gray_8x8.jpg", channels: 0);
        AssertImage(gray, 8, 8, 1);
        AssertAllNear(gray.data<byte>(), [77], tolerance: 1);
        using var grayAsRgb = Decode("gray_8x8.jpg");
        AssertImage(grayAsRgb, 8, 8, 3);
        AssertAllNear(grayAsRgb.data<byte>(), [77, 77, 77], tolerance: 1);

        // Pure red ink (C=0 M=255 Y=255 K=0) is red.
        using var cmyk = Decode("cmyk_8x8.jpg", channels: 0);
        AssertImage(cmyk, 8, 8, 3);
        AssertAllNear(cmyk.data<byte>(), [255, 0, 0], tolerance: 2);
    }

    [Fact]
    public void Textured_jpeg_matches_the_reference_decoder()
    {
        // texture_16x8.rgb holds what Pillow (libjpeg-turbo too) decodes from the same file.
        using var image = Decode("texture_16x8.jpg");
        AssertImage(image, 8, 16, 3);
        var expected = Fixture.Bytes("texture_16x8.rgb");
        var actual = image.data<byte>();
        Assert.Equal(expected.Length, actual.Length);
        Assert.All(expected.Zip(actual), p => Assert.InRange(Math.Abs(p.First - p.Second), 0, 1));
    }

    public static TheoryData<string, byte[], string> CorruptInputs()
    {
        var png = Fixture.Bytes("rgb_4x3.png");
        var jpeg = Fixture.Bytes("texture_16x8.jpg");
        var badData = png.ToArray();
        badData[45] ^= 0xFF;  // a byte of IDAT's compressed data
        var random = new byte[256];
        new Random(1234).NextBytes(random);
        random[0] = 0x42;  // neither magic
        return new()
        {
            { "empty", [], "image data is empty" },
            { "random", random, "not a JPEG or PNG image (first bytes: 42 " },
            { "text", "hello"u8.ToArray(), "not a JPEG or PNG image (first bytes: 68 65 6c 6c 6f)" },
            { "truncated PNG", png[..50], "invalid PNG: " },
            { "PNG signature only", png[..8], "invalid PNG: " },
            { "PNG with corrupt pixel data", badData, "invalid PNG: " },
            { "JPEG cut inside its scan", jpeg[..^40], "invalid JPEG: " },
            { "JPEG cut before its scan", jpeg[..400], "invalid JPEG: " },
            { "JPEG markers only", jpeg[..3], "invalid JPEG: " },
        };
    }

    [Theory]
    [MemberData(nameof(CorruptInputs))]
    public void Corrupt_input_raises_a_clear_error_and_decoding_goes_on(string what, byte[] data, string expected)
    {
        var e = Assert.Throws<TorchException>(() => ImageDecoder.Decode(data));
        Assert.StartsWith(expected, e.Message);
        if (expected.EndsWith(": ")) Assert.True(e.Message.Length > expected.Length, $"{what}: no reason given");  // the library's reason follows

        using var next = Decode("rgb_4x3.png");
        AssertImage(next, 3, 4, 3);
    }

    [Theory]
    [InlineData("rgb_4x3.png")]
    [InlineData("palette_2x2.png")]
    [InlineData("texture_16x8.jpg")]
    [InlineData("cmyk_8x8.jpg")]
    public void Randomly_damaged_images_decode_or_throw_but_never_crash(string fixture)
    {
        var original = Fixture.Bytes(fixture);
        var random = new Random(fixture.Length);
        for (var trial = 0; trial < 300; trial++)
        {
            var data = original.ToArray();
            for (var flips = random.Next(1, 4); flips > 0; flips--) data[random.Next(data.Length)] = (byte)random.Next(256);
            data = data[..random.Next(data.Length / 2, data.Length + 1)];
            try
            {
                using var image = ImageDecoder.Decode(data, channels: trial % 2 * 3);
                Assert.Equal(ScalarType.Byte, image.dtype);
            }
            catch (TorchException e)
            {
                Assert.Matches("^(invalid (PNG|JPEG): .+|not a JPEG or PNG image .+|(PNG|JPEG) of .+ exceeds the limit .+)$", e.Message);
            }
        }
    }

    [Fact]
    public void Absurd_dimensions_are_refused_before_allocating()
    {
        Assert.Equal("PNG of 100000x100000 pixels exceeds the limit of 2^28 pixels",
            Assert.Throws<TorchException>(() => ImageDecoder.Decode(Fixture.Bytes("huge_100000x100000.png"))).Message);

        // The same JPEG with its SOF0 frame header claiming 60000 x 60000.
        var jpeg = Fixture.Bytes("flat_16x16.jpg");
        var sof = jpeg.AsSpan().IndexOf([(byte)0xFF, (byte)0xC0]);
        Assert.True(sof > 0);
        foreach (var at in new[] { sof + 5, sof + 7 }) (jpeg[at], jpeg[at + 1]) = (0xEA, 0x60);  // height, width
        Assert.Equal("JPEG of 60000x60000 pixels exceeds the limit of 2^28 pixels",
            Assert.Throws<TorchException>(() => ImageDecoder.Decode(jpeg)).Message);
    }

    [Fact]
    public void File_errors_name_the_file_and_bad_channel_counts_are_refused()
    {
        using var dir = new TempDirectory();
        var path = dir.File("broken.png");
        File.WriteAllBytes(path, [0x89, (byte)'P', (byte)'N', (byte)'G', 1, 2, 3]);
        Assert.Equal($"{path}: not a JPEG or PNG image (first bytes: 89 50 4e 47 01 02 03)",
            Assert.Throws<TorchException>(() => ImageDecoder.DecodeFile(path)).Message);
        Assert.Throws<FileNotFoundException>(() => ImageDecoder.DecodeFile(dir.File("absent.png")));
        Assert.Equal("channels must be 0 (as stored), 1 (gray) or 3 (RGB), not 4",
            Assert.Throws<TorchException>(() => ImageDecoder.Decode(Fixture.Bytes("rgb_4x3.png"), channels: 4)).Message);
    }
}
