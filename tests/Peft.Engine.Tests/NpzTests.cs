using System.Text;
using Peft.Engine.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine.Tests;

/// <summary>The files of Fixtures/, made by tests/fixtures-src/make_fixtures.py.</summary>
internal static class Fixture
{
    public static string Path(string name) => System.IO.Path.Combine(AppContext.BaseDirectory, "Fixtures", name);
    public static byte[] Bytes(string name) => File.ReadAllBytes(Path(name));
}

public class NpzTests
{
    /// <summary>A .npy by hand: magic, version, header length, the dict padded to 64 bytes, the data.</summary>
    private static MemoryStream NpyBytes(string dict, byte[] data, byte major = 1)
    {
        var lengthBytes = major == 1 ? 2 : 4;
        var unpadded = 8 + lengthBytes + dict.Length + 1;
        var header = dict + new string(' ', (64 - unpadded % 64) % 64) + "\n";
        var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.Latin1, leaveOpen: true))
        {
            w.Write([0x93, .. "NUMPY"u8, major, (byte)0]);
            if (major == 1) w.Write((ushort)header.Length);
            else w.Write((uint)header.Length);
            w.Write(Encoding.Latin1.GetBytes(header));
            w.Write(data);
        }
        stream.Position = 0;
        return stream;
    }

    private static void AssertTensor(Tensor t, ScalarType dtype, params long[] shape)
    {
        Assert.Equal(dtype, t.dtype);
        Assert.Equal(shape, t.shape);
    }

    [Theory]
    [InlineData("arrays.npz")]             // np.savez: stored members
    [InlineData("arrays_compressed.npz")]  // np.savez_compressed: deflated members
    public void Reads_the_arrays_numpy_wrote(string file)
    {
        using var npz = Npz.Open(Fixture.Path(file));
        Assert.Equal(["f32", "f64", "i64", "u8", "flags", "fortran", "scalar", "half", "i16be"], npz.Names);

        using var f32 = npz.Load("f32");
        AssertTensor(f32, ScalarType.Float32, 2, 3);
        Assert.Equal(new[] { 1.5f, -2f, 3.25f, 0f, 1e-3f, -7.5f }, f32.data<float>().ToArray());

        using var f64 = npz.Load("f64");
        Assert.Equal(new[] { Math.PI, -Math.E, 1e300 }, f64.data<double>().ToArray());

        using var i64 = npz.Load("i64");
        AssertTensor(i64, ScalarType.Int64, 2, 2);
        Assert.Equal(new[] { -(1L << 40), 0, 7, 1L << 62 }, i64.data<long>().ToArray());

        using var u8 = npz.Load("u8");
        Assert.Equal(new byte[] { 0, 1, 127, 128, 255 }, u8.data<byte>().ToArray());

        using var flags = npz.Load("flags");
        Assert.Equal(ScalarType.Bool, flags.dtype);
        Assert.Equal([true, false, true, true], flags.data<bool>().ToArray());

        // Stored column-major (1 4 2 5 3 6); read back in the logical row-major order.
        using var fortran = npz.Load("fortran");
        AssertTensor(fortran, ScalarType.Int32, 2, 3);
        Assert.Equal(new[] { 1, 2, 3, 4, 5, 6 }, fortran.data<int>().ToArray());

        using var scalar = npz.Load("scalar");
        Assert.Empty(scalar.shape);
        Assert.Equal(42.5, scalar.ToDouble());

        using var half = npz.Load("half");
        Assert.Equal(new[] { (Half)0.5f, (Half)(-1f), (Half)65504f }, half.data<Half>().ToArray());

        using var bigEndian = npz.Load("i16be");
        Assert.Equal(new short[] { 1, -2, 300 }, bigEndian.data<short>().ToArray());
    }

    [Fact]
    public void LoadAll_returns_every_array_by_name()
    {
        var all = Npz.LoadAll(Fixture.Path("arrays_compressed.npz"));
        Assert.Equal(9, all.Count);
        Assert.Equal(new long[] { 2, 3 }, all["fortran"].shape);
        foreach (var t in all.Values) t.Dispose();
    }

    [Fact]
    public void Reads_a_hand_built_version_1_npy()
    {
        using var stream = NpyBytes("{'descr': '<i2', 'fortran_order': False, 'shape': (2, 2), }", [1, 0, 0xFF, 0xFF, 0x2C, 0x01, 0, 0x80]);
        using var t = Npy.Read(stream);
        AssertTensor(t, ScalarType.Int16, 2, 2);
        Assert.Equal(new short[] { 1, -1, 300, short.MinValue }, t.data<short>().ToArray());
    }

    [Fact]
    public void Reads_version_2_big_endian_and_a_3d_fortran_array()
    {
        // '>f8' 1.0 and -0.5 in version 2.0 (u32 header length), with Python 2's 3L spelling.
        using var be = NpyBytes("{'descr': '>f8', 'fortran_order': False, 'shape': (2L,), }",
            [0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0xBF, 0xE0, 0, 0, 0, 0, 0, 0], major: 2);
        using var d = Npy.Read(be);
        Assert.Equal(new[] { 1.0, -0.5 }, d.data<double>().ToArray());

        // a[i, j, k] = 100 i + 10 j + k with shape (2, 3, 4), stored with i varying fastest.
        var data = new List<byte>();
        for (var k = 0; k < 4; k++)
            for (var j = 0; j < 3; j++)
                for (var i = 0; i < 2; i++)
                    data.Add((byte)(100 * i + 10 * j + k));
        using var f = NpyBytes("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3, 4)}", [.. data], major: 3);
        using var a = Npy.Read(f);
        Assert.Equal(new long[] { 2, 3, 4 }, a.shape);
        var expected = from i in Enumerable.Range(0, 2) from j in Enumerable.Range(0, 3) from k in Enumerable.Range(0, 4) select (byte)(100 * i + 10 * j + k);
        Assert.Equal(expected, a.data<byte>().ToArray());
    }

    [Theory]
    [InlineData("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "npy object arrays ('|O') are not supported: reading them would mean running pickle")]
    [InlineData("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", "npy dtype '<u2' is not supported")]
    [InlineData("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", "npy structured dtypes are not supported")]
    [InlineData("{'descr': __import__('os').system('x'), 'fortran_order': False, 'shape': (2,), }", "npy header is not a valid literal (unexpected token at offset 10)")]
    [InlineData("{'descr': '<f4', 'shape': (2,), }", "npy header must have exactly the keys descr, fortran_order, shape")]
    [InlineData("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", "npy 'fortran_order' must be True or False")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "npy 'shape' must be a tuple of non-negative integers")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } extra", "npy header is not a valid literal (unexpected text after the literal")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", "npy data is truncated: float32 [3] needs 12 bytes")]
    public void Unsupported_or_malformed_headers_are_refused(string dict, string expected)
    {
        using var stream = NpyBytes(dict, new byte[8]);
        var e = Assert.Throws<InvalidDataException>(() => Npy.Read(stream));
        Assert.StartsWith(expected, e.Message);
    }

    [Fact]
    public void Non_npy_bytes_and_unknown_versions_are_refused()
    {
        Assert.Contains("does not begin with \\x93NUMPY",
            Assert.Throws<InvalidDataException>(() => Npy.Read(new MemoryStream("PK\x03\x04 not npy"u8.ToArray()))).Message);
        Assert.Contains("unsupported .npy version 4.0",
            Assert.Throws<InvalidDataException>(() => Npy.Read(new MemoryStream([0x93, .. "NUMPY"u8, 4, 0, 0, 0]))).Message);
    }

    [Fact]
    public void An_npz_array_declaring_40_GB_is_refused_from_its_header_naming_the_file_before_any_allocation()
    {
        using var dir = new TempDirectory();
        var path = dir.File("huge.npz");
        // 100000 x 100000 float32 = 40 GB declared, 8 bytes present: the header alone must stop it.
        using (var zip = new System.IO.Compression.ZipArchive(File.Create(path), System.IO.Compression.ZipArchiveMode.Create))
        using (var entry = zip.CreateEntry("w.npy").Open())
            NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }", new byte[8]).CopyTo(entry);

        using var npz = Npz.Open(path);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var e = Assert.Throws<InvalidDataException>(() => npz.Load("w"));
        Assert.StartsWith($"{path}: array 'w': npy array float32 [100000, 100000] declares 40000000000 bytes, more than the ", e.Message);
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 1 << 20);

        // The archive's directory declaring more than the caller's limit is refused when it is opened.
        Assert.Contains("above the limit of 100 bytes; nothing was read",
            Assert.Throws<InvalidDataException>(() => Npz.Open(path, maxBytes: 100)).Message);
    }

    [Fact]
    public void Npz_errors_name_the_file_and_the_array()
    {
        using var dir = new TempDirectory();
        var path = dir.File("objects.npz");
        using (var zip = new System.IO.Compression.ZipArchive(File.Create(path), System.IO.Compression.ZipArchiveMode.Create))
        using (var entry = zip.CreateEntry("obj.npy").Open())
            NpyBytes("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", new byte[8]).CopyTo(entry);

        using var npz = Npz.Open(path);
        Assert.Equal(["obj"], npz.Names);
        var e = Assert.Throws<InvalidDataException>(() => npz.Load("obj"));
        Assert.StartsWith($"{path}: array 'obj': npy object arrays", e.Message);
        Assert.Contains("no array named 'missing' (arrays: obj)", Assert.Throws<KeyNotFoundException>(() => npz.Load("missing")).Message);

        var notZip = dir.File("plain.npz");
        File.WriteAllText(notZip, "not a zip at all");
        Assert.StartsWith($"{notZip}: not an npz (zip) archive", Assert.Throws<InvalidDataException>(() => Npz.Open(notZip)).Message);
    }
}
