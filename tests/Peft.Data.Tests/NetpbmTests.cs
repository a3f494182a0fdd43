using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Data.Tests;

public class NetpbmTests
{
    private readonly NetpbmDecoder _decoder = new();

    [Fact]
    public void P6_with_a_comment_decodes_to_HWC_uint8()
    {
        byte[] pixels = [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90];
        using var t = _decoder.Decode(TestData.Netpbm(3, 2, pixels, comment: "made by hand"), "x.ppm", 0);
        Assert.Equal([2L, 3, 3], t.shape);
        Assert.Equal(pixels, t.data<byte>().ToArray());
    }

    [Fact]
    public void A_header_declaring_more_pixels_than_the_limit_is_refused_before_the_raster_is_read()
    {
        var decoder = new NetpbmDecoder(new SkiaImageDecoder(new ImageLimits(MaxPixels: 1000)));
        var e = Assert.Throws<InvalidDataException>(() => decoder.Decode("P5\n100000 100000\n255\n"u8, "huge.pgm", 0));
        Assert.Equal("huge.pgm: PGM of 100000x100000 pixels exceeds the limit of 1000 pixels; it was not decoded", e.Message);
    }

    [Fact]
    public void A_large_image_is_halved_while_decoding_towards_the_pipeline_size()
    {
        // 4096x2048 (8 megapixels, above the 4 that are kept whole) towards 224: halved 3 times to 512x256, the last size
        // whose sides are both at least 224. Constant 8x8 blocks make every mean exact: out(x, y) = (x + y) mod 256.
        const int w = 4096, h = 2048;
        var pixels = new byte[w * h];
        for (var y = 0; y < h; y++)
            for (var x = 0; x < w; x++)
                pixels[y * w + x] = (byte)((x / 8 + y / 8) % 256);
        var decoder = new NetpbmDecoder(new SkiaImageDecoder(new ImageLimits(MinSide: 224)));
        using var t = decoder.Decode(TestData.Netpbm(w, h, pixels), "big.pgm", 0);
        Assert.Equal([256L, 512, 1], t.shape);
        var values = t.data<byte>().ToArray();
        for (var y = 0; y < 256; y += 37)
            for (var x = 0; x < 512; x += 41)
                Assert.Equal((byte)((x + y) % 256), values[y * 512 + x]);
        // Below the threshold nothing is shrunk, whatever MinSide says.
        using var small = decoder.Decode(TestData.Netpbm(1024, 1024, new byte[1024 * 1024]), "small.pgm", 0);
        Assert.Equal([1024L, 1024, 1], small.shape);
    }

    [Fact]
    public void Channels_are_converted_as_requested()
    {
        using var gray3 = _decoder.Decode(TestData.Netpbm(2, 1, [0, 200]), "g.pgm", 3);
        Assert.Equal([0, 0, 0, 200, 200, 200], gray3.data<byte>().ToArray());
        // ITU-R 601 luma in PIL's fixed point: (19595·100 + 38470·150 + 7471·200 + 32768) >> 16 = 141
        using var luma = _decoder.Decode(TestData.SolidPpm(1, 1, 100, 150, 200), "c.ppm", 1);
        Assert.Equal([1L, 1, 1], luma.shape);
        Assert.Equal([141], luma.data<byte>().ToArray());
    }

    [Fact]
    public void Sixteen_bit_and_small_maxval_are_rescaled_to_0_255()
    {
        byte[] wide = [.. Encoding.ASCII.GetBytes("P5 2 1 65535\n"), 0xFF, 0xFF, 0x80, 0x00];
        using var t = _decoder.Decode(wide, "w.pgm", 0);
        Assert.Equal([255, 128], t.data<byte>().ToArray()); // 32768·255/65535 = 127.5 → rounds half up
        byte[] small = [.. Encoding.ASCII.GetBytes("P5\n2 1\n3\n"), 3, 1];
        using var s = _decoder.Decode(small, "s.pgm", 0);
        Assert.Equal([255, 85], s.data<byte>().ToArray());
    }

    [Fact]
    public void Truncated_or_foreign_bytes_are_errors_naming_the_source()
    {
        var full = TestData.SolidPpm(4, 4, 1, 2, 3);
        var e = Assert.Throws<InvalidDataException>(() => _decoder.Decode(full.AsSpan(0, full.Length - 5), "cut.ppm", 3));
        Assert.StartsWith("cut.ppm: raster truncated: 4x4x3 needs 48 bytes, found 43", e.Message);
        e = Assert.Throws<InvalidDataException>(() => _decoder.Decode("\x89PNG"u8, "a.png", 3));
        Assert.StartsWith("a.png: not a binary PGM/PPM file", e.Message);
        e = Assert.Throws<InvalidDataException>(() => _decoder.Decode("P6 4"u8, "h.ppm", 3));
        Assert.StartsWith("h.ppm: header ends before the height field", e.Message);
    }

    [Fact]
    public void Other_formats_go_to_the_fallback_decoder()
    {
        var chained = new NetpbmDecoder(new ConstantDecoder());
        using var t = chained.Decode("\x89PNG"u8, "a.png", 3);
        Assert.Equal([7], t.data<byte>().ToArray());
    }

    private sealed class ConstantDecoder : IImageDecoder
    {
        public Tensor Decode(ReadOnlySpan<byte> bytes, string sourceName, int channels) =>
            torch.tensor(new byte[] { 7 }, [1, 1, 1], ScalarType.Byte);
    }
}
