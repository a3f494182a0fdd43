using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Peft.Engine.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine.Tests;

public class NpyWriterTests
{
    private static byte[] NpyBytes(Tensor t)
    {
        using var stream = new MemoryStream();
        NpyWriter.Write(stream, t);
        return stream.ToArray();
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("f64")]
    [InlineData("i64")]
    [InlineData("u8")]
    [InlineData("flags")]
    [InlineData("scalar")]
    [InlineData("half")]
    public void Writes_the_bytes_numpy_writes(string name)
    {
        // arrays.npz was written by np.savez (tests/fixtures-src/make_fixtures.py): its members are the reference bytes.
        using var zip = ZipFile.OpenRead(Fixture.Path("arrays.npz"));
        using var numpyMember = new MemoryStream();
        using (var member = zip.GetEntry(name + ".npy")!.Open()) member.CopyTo(numpyMember);
        using var npz = Npz.Open(Fixture.Path("arrays.npz"));
        using var array = npz.Load(name);

        Assert.Equal(numpyMember.ToArray(), NpyBytes(array));
    }

    [Fact]
    public void The_header_is_a_version_1_dict_padded_to_64_bytes()
    {
        using var t = torch.tensor(new[] { 1, -2, 3, 4, 5, 6 }, 2, 3);
        var bytes = NpyBytes(t);
        Assert.Equal([0x93, .. "NUMPY"u8, 1, 0], bytes[..8]);
        var length = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8));
        Assert.Equal(0, (10 + length) % 64);
        var header = Encoding.Latin1.GetString(bytes, 10, length);
        Assert.Equal("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", header.TrimEnd(' ', '\n'));
        Assert.EndsWith("\n", header);
        Assert.Equal(10 + length + 6 * 4, bytes.Length);
        Assert.Equal(-2, BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(10 + length + 4)));
    }

    [Fact]
    public void Npz_write_round_trips_every_supported_dtype_and_strided_tensors()
    {
        using var dir = new TempDirectory();
        var path = dir.File("round.npz");
        using var matrix = torch.tensor(new[] { 1f, 2f, 3f, 4f, 5f, 6f }, 2, 3);
        using var transposed = matrix.t();                   // not contiguous: written in its logical order
        using var f8 = torch.tensor(new[] { Math.PI, -1e-300 });
        using var f2 = torch.tensor(new[] { (Half)0.25f, (Half)(-3f) });
        using var i8 = torch.tensor(new[] { long.MinValue, 5L });
        using var u1 = torch.tensor(new byte[] { 0, 200 });
        using var b1 = torch.tensor(new[] { true, false, true });
        using var scalar = torch.tensor(7.5f).reshape();
        Npz.Write(path, new Dictionary<string, Tensor>
        {
            ["a/b/transposed"] = transposed, ["f8"] = f8, ["f2"] = f2, ["i8"] = i8, ["u1"] = u1, ["b1"] = b1, ["scalar"] = scalar,
        });

        using var npz = Npz.Open(path);
        Assert.Equal(["a/b/transposed", "f8", "f2", "i8", "u1", "b1", "scalar"], npz.Names);
        using (var t = npz.Load("a/b/transposed"))
        {
            Assert.Equal([3L, 2L], t.shape);
            Assert.Equal(new[] { 1f, 4f, 2f, 5f, 3f, 6f }, t.data<float>().ToArray());
        }
        using (var t = npz.Load("f8")) Assert.Equal(new[] { Math.PI, -1e-300 }, t.data<double>().ToArray());
        using (var t = npz.Load("f2")) Assert.Equal(new[] { (Half)0.25f, (Half)(-3f) }, t.data<Half>().ToArray());
        using (var t = npz.Load("i8")) Assert.Equal(new[] { long.MinValue, 5L }, t.data<long>().ToArray());
        using (var t = npz.Load("u1")) Assert.Equal(new byte[] { 0, 200 }, t.data<byte>().ToArray());
        using (var t = npz.Load("b1")) Assert.Equal([true, false, true], t.data<bool>().ToArray());
        using (var t = npz.Load("scalar"))
        {
            Assert.Empty(t.shape);
            Assert.Equal(7.5, t.ToDouble());
        }

        // np.savez stores its members uncompressed; so does this writer.
        using var zip = ZipFile.OpenRead(path);
        Assert.All(zip.Entries, e => Assert.Equal(e.Length, e.CompressedLength));
    }

    [Fact]
    public void Unsupported_dtypes_and_duplicate_names_are_refused()
    {
        using var i16 = torch.tensor(new short[] { 1, 2 });
        Assert.Contains("no .npy writer for int16", Assert.Throws<NotSupportedException>(() => NpyBytes(i16)).Message);

        using var dir = new TempDirectory();
        using var x = torch.zeros(2);
        var e = Assert.Throws<ArgumentException>(() => Npz.Write(dir.File("dup.npz"), [new("x", x), new("x", x)]));
        Assert.Contains("array 'x' is given twice", e.Message);
    }
}
