using System.Text;
using Peft.Engine.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine.Tests;

public sealed class SafetensorsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>Writes a file by hand, per the public format: u64 LE header length, header JSON, data.</summary>
    private string WriteRaw(string header, byte[] data, string name = "raw.safetensors")
    {
        var path = _dir.File(name);
        using var writer = new BinaryWriter(File.Create(path));
        var json = Encoding.UTF8.GetBytes(header);
        writer.Write((ulong)json.Length);
        writer.Write(json);
        writer.Write(data);
        return path;
    }

    private static byte[] LittleEndian(Action<BinaryWriter> write)
    {
        var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream)) write(writer);
        return stream.ToArray();
    }

    /// <summary>A tensor's elements in row-major order, as raw bytes (whatever its strides).</summary>
    private static byte[] Bytes(Tensor t)
    {
        using var dense = t.contiguous();
        return dense.bytes.ToArray();
    }

    [Fact]
    public void Round_trip_keeps_dtypes_shapes_values_and_metadata()
    {
        // bfloat16 1.0, -2.5, 0.5, 3.140625 (0x3F80 0xC020 0x3F00 0x4049)
        var bf16 = LittleEndian(w => { foreach (ushort v in new ushort[] { 0x3F80, 0xC020, 0x3F00, 0x4049 }) w.Write(v); });
        using var f32 = tensor(new float[] { 1.5f, -2f, 3.25f, 0f, 1e-3f, -7.5f }, 2, 3);
        using var f64 = tensor(new[] { Math.PI, -Math.E, 1e300 });
        using var f16 = tensor(new[] { (Half)0.5f, (Half)(-1f), Half.MaxValue });
        using var b16 = empty([2, 2], ScalarType.BFloat16);
        b16.bytes = bf16;
        using var i64 = tensor(new[] { long.MinValue, -1L, 0L, long.MaxValue }, 2, 1, 2);
        using var i32 = tensor(new[] { int.MinValue, 7, int.MaxValue });
        using var u8 = tensor(new byte[] { 0, 127, 128, 255 });
        using var flags = tensor(new[] { true, false, true });
        using var scalar = tensor(42.5f);
        using var none = zeros(0, 3);
        using var square = tensor(new float[] { 1, 2, 3, 4 }, 2, 2);
        using var transposed = square.t();
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = f32, ["f64"] = f64, ["f16"] = f16, ["bf16"] = b16, ["i64"] = i64, ["i32"] = i32,
            ["u8"] = u8, ["flags"] = flags, ["scalar"] = scalar, ["empty"] = none, ["transposed"] = transposed,
        };
        var path = _dir.File("all.safetensors");
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "ünïcode \"quoted\" \\ {}" };

        SafeTensors.Save(path, tensors, metadata);

        using var reader = SafeTensors.Open(path);
        Assert.Equal(tensors.Keys.Order(), reader.Names.Order());
        Assert.Equal(metadata, reader.Metadata);
        foreach (var (name, original) in tensors)
        {
            var info = reader.Info(name);
            Assert.Equal(original.dtype, info.DType);
            Assert.Equal(original.shape, info.Shape);
            Assert.Equal(0, info.Begin % original.dtype.ElementSize());  // aligned: larger elements come first
            using var loaded = reader.Load(name);
            Assert.Equal(original.dtype, loaded.dtype);
            Assert.Equal(original.shape, loaded.shape);
            Assert.Equal(Bytes(original), Bytes(loaded));
        }
        using var t = reader.Load("transposed");
        Assert.Equal(new float[] { 1, 3, 2, 4 }, t.data<float>().ToArray());
        using var d = reader.Load("f64");
        Assert.Equal(new[] { Math.PI, -Math.E, 1e300 }, d.data<double>().ToArray());
        using var s = reader.Load("scalar");
        Assert.Equal(42.5, s.ToDouble());
        using var b = reader.Load("bf16");
        using var bAsFloat = b.to(ScalarType.Float32);
        Assert.Equal(new[] { 1f, -2.5f, 0.5f, 3.140625f }, bAsFloat.data<float>().ToArray());
        using var f = reader.Load("flags");
        Assert.Equal([true, false, true], f.data<bool>().ToArray());
        Assert.Equal(0, BitConverter.ToInt64(File.ReadAllBytes(path), 0) % 8);  // the header is padded
    }

    [Fact]
    public void Reads_a_file_laid_out_byte_by_byte_per_the_public_format()
    {
        // Header order differs from data order, no padding, metadata last: all allowed by the format.
        const string header =
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[6,22]}," +
            "\"idx\":{\"dtype\":\"I16\",\"shape\":[3],\"data_offsets\":[0,6]}," +
            "\"m\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[22,24]}," +
            "\"__metadata__\":{\"who\":\"hand\"}}";
        var data = LittleEndian(w =>
        {
            w.Write((short)7); w.Write((short)-8); w.Write((short)300);
            w.Write(1.0f); w.Write(-2.0f); w.Write(0.5f); w.Write(3.25f);
            w.Write((ushort)0x4049);  // bfloat16 3.140625
        });
        var path = WriteRaw(header, data);

        using var reader = SafeTensors.Open(path);
        Assert.Equal(["idx", "w", "m"], reader.Names);
        Assert.Equal("hand", reader.Metadata["who"]);
        var info = reader.Info("w");
        Assert.Equal((ScalarType.Float32, 6L, 22L, 16L), (info.DType, info.Begin, info.End, info.ByteLength));
        Assert.Equal([2L, 2L], info.Shape);
        using var w = reader.Load("w");
        Assert.Equal(new long[] { 2, 2 }, w.shape);
        Assert.Equal(new[] { 1.0f, -2.0f, 0.5f, 3.25f }, w.data<float>().ToArray());
        using var idx = reader.Load("idx");
        Assert.Equal(new short[] { 7, -8, 300 }, idx.data<short>().ToArray());
        using var m = reader.Load("m");
        Assert.Empty(m.shape);
        Assert.Equal(3.140625, m.ToDouble());
    }

    [Fact]
    public void Writer_produces_the_expected_bytes()
    {
        using var a = tensor(new[] { 1.0f, 2.0f });
        using var b = tensor(new byte[] { 1, 2, 3 });
        using var z = tensor(new[] { 5L });
        var path = _dir.File("exact.safetensors");

        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["b"] = b, ["a"] = a, ["z"] = z }, new Dictionary<string, string> { ["k"] = "v" });

        // 187 bytes of JSON padded with 5 spaces to 192; data by descending element size, then name.
        const string header =
            "{\"__metadata__\":{\"k\":\"v\"}," +
            "\"z\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}," +
            "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}," +
            "\"b\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[16,19]}}     ";
        byte[] expected =
        [
            192, 0, 0, 0, 0, 0, 0, 0,
            .. Encoding.ASCII.GetBytes(header),
            5, 0, 0, 0, 0, 0, 0, 0,
            0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40,
            1, 2, 3,
        ];
        Assert.Equal(expected, File.ReadAllBytes(path));
    }

    [Fact]
    public void Save_replaces_an_existing_file_and_leaves_no_temporary_file()
    {
        var path = _dir.File("model.safetensors");
        using var first = ones(3);
        using var second = full(2, 7.0f, ScalarType.Float32);
        SafeTensors.Save(path, [new("x", first)]);
        SafeTensors.Save(path, [new("y", second)]);

        var loaded = SafeTensors.LoadAll(path);
        Assert.Equal(["y"], loaded.Keys);
        Assert.Equal(new[] { 7f, 7f }, loaded["y"].data<float>().ToArray());
        Assert.Equal([path], Directory.GetFiles(_dir.Path));
    }

    [Fact]
    public void Save_rejects_a_reserved_or_repeated_name()
    {
        using var x = ones(1);
        var path = _dir.File("bad.safetensors");
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [new("__metadata__", x)])).Message);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => SafeTensors.Save(path, [new("x", x), new("x", x)])).Message);
        Assert.Empty(Directory.GetFiles(_dir.Path));
    }

    private const string F32x3 = "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";

    public static TheoryData<string, int, string> MalformedHeaders => new()
    {
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16, "tensor 't': data_offsets [0, 16] span 16 bytes but F32 [3] needs 12" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}", 12, "tensor 't': data_offsets [4, 16] run past the end of the data (12 bytes after the header)" },
        { "{\"t\":{\"dtype\":\"U16\",\"shape\":[3],\"data_offsets\":[0,6]}}", 6, "tensor 't': unsupported dtype 'U16' (supported: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)" },
        { "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,12]}}", 12, "tensor 't': 'shape' is missing" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,12]}}", 12, "tensor 't': 'shape' holds -3, not a non-negative integer" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", 16, "the tensors cover 12 bytes of data but 16 follow the header" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},\"u\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[10,12]}}", 12, "tensor 'u' overlaps tensor 't'" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}", 16, "4 bytes of the data before tensor 't' belong to no tensor" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}", 12, "the header is not valid JSON" },
        { "[1, 2]", 0, "the header is a JSON Array, not an object" },
        { "{\"__metadata__\":{\"n\":1}}", 0, "metadata 'n' must be a string, not a JSON Number" },
    };

    [Theory]
    [MemberData(nameof(MalformedHeaders))]
    public void Malformed_headers_are_refused_with_a_message_naming_file_and_problem(string header, int dataBytes, string expected)
    {
        var path = WriteRaw(header, new byte[dataBytes]);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Open(path));
        Assert.Contains($"safetensors file '{path}'", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Truncated_file_is_refused()
    {
        var path = _dir.File("short.safetensors");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5]);
        Assert.Contains("the file is 5 bytes, too short for the 8-byte header length",
            Assert.Throws<InvalidDataException>(() => SafeTensors.Open(path)).Message);

        // A valid file cut inside its data: the header now points past the end.
        var full = WriteRaw(F32x3, new byte[12], "full.safetensors");
        var cut = _dir.File("cut.safetensors");
        File.WriteAllBytes(cut, File.ReadAllBytes(full)[..^4]);
        Assert.Contains("tensor 't': data_offsets [0, 12] run past the end of the data (8 bytes after the header)",
            Assert.Throws<InvalidDataException>(() => SafeTensors.Open(cut)).Message);
    }

    [Fact]
    public void A_sparse_file_declaring_40_GB_is_refused_from_its_header_naming_the_file()
    {
        // A sparse file takes no disk yet "holds" 40 GB: only a limit on what the header declares bounds memory.
        var path = WriteRaw("""{"w":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,40000000000]}}""", [], "huge.safetensors");
        using (var file = new FileStream(path, FileMode.Open)) file.SetLength(file.Length + 40_000_000_000L);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("its header declares 40000000000 bytes of tensors, above the limit of 4294967296 bytes; nothing was read", e.Message);
        File.Delete(path);
    }

    [Fact]
    public void Header_length_beyond_the_file_is_refused()
    {
        var path = _dir.File("long.safetensors");
        File.WriteAllBytes(path, [.. BitConverter.GetBytes(1_000_000UL), .. "{}"u8]);
        Assert.Contains("the header length 1000000 runs past the end of the file (10 bytes)",
            Assert.Throws<InvalidDataException>(() => SafeTensors.Open(path)).Message);
    }

    [Fact]
    public void Unknown_tensor_name_is_a_KeyNotFoundException()
    {
        using var reader = SafeTensors.Open(WriteRaw(F32x3, new byte[12]));
        Assert.True(reader.Contains("t"));
        Assert.Contains("no tensor named 'nope'", Assert.Throws<KeyNotFoundException>(() => reader.Load("nope")).Message);
    }
}

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("peft-tests-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
