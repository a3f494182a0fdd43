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
