using System.Buffers.Binary;
using System.Globalization;
using System.Text;

using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine.Formats;

/// <summary>
/// Reads NumPy's <c>.npy</c> format, versions 1.0, 2.0 and 3.0: the magic <c>\x93NUMPY</c>, a
/// version, a little-endian header length (u16 in 1.0, u32 after), a Python dict literal such as
/// <c>{'descr': '&lt;f4', 'fortran_order': False, 'shape': (3, 4), }</c>, then the raw elements.
/// The header is parsed by a small strict parser, never evaluated; object arrays, which would need
/// pickle, are refused.
/// </summary>
public static class Npy
{
    private static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    private static readonly (string Kind, ScalarType Type)[] DTypes =
    [
        ("f2", ScalarType.Float16), ("f4", ScalarType.Float32), ("f8", ScalarType.Float64),
        ("i1", ScalarType.Int8), ("i2", ScalarType.Int16), ("i4", ScalarType.Int32), ("i8", ScalarType.Int64),
        ("u1", ScalarType.Byte), ("b1", ScalarType.Bool),
    ];

    /// <summary>Reads one array from the stream (which is left just after its data).</summary>
    /// <param name="maxBytes">
    /// The most bytes the array may hold (what its container says it holds, or a memory limit): an array whose header
    /// declares more is refused before anything is allocated.
    /// </param>
    /// <exception cref="InvalidDataException">The stream does not hold a supported .npy array, or one within <paramref name="maxBytes"/>.</exception>
    public static Tensor Read(Stream stream, long maxBytes = long.MaxValue)
    {
        var (dtype, bigEndian, fortranOrder, shape) = ReadHeader(stream);
        if (TensorBytes.ByteLength(dtype, shape) is { } declared && declared > maxBytes)
            throw new InvalidDataException($"npy array {dtype.Name()} [{string.Join(", ", shape)}] declares {declared} bytes, more than the " +
                                           $"{maxBytes} it may hold; nothing was allocated");
        // Column-major data is the row-major layout of the transposed array.
        var stored = fortranOrder ? shape.Reverse().ToArray() : shape;
        // Bools are read as bytes and converted, so that any nonzero byte is true (as in NumPy).
        var storedType = dtype == ScalarType.Bool ? ScalarType.Byte : dtype;
        Tensor tensor;
        try
        {
            tensor = TensorBytes.Read(stream, storedType, stored);
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException(
                $"npy data is truncated: {dtype.Name()} [{string.Join(", ", shape)}] needs {TensorBytes.ByteLength(dtype, shape)} bytes");
        }
        if (bigEndian) TensorBytes.SwapByteOrder(tensor);
        if (dtype == ScalarType.Bool) tensor = Replace(tensor, t => t.to(ScalarType.Bool));
        if (fortranOrder && shape.Length > 1)
            tensor = Replace(tensor, t =>
            {
                using var transposed = t.permute([.. Enumerable.Range(0, shape.Length).Reverse().Select(d => (long)d)]);
                return transposed.contiguous();
            });
        return tensor;
    }

    // Disposes the tensor once the next step of its conversion is made.
    private static Tensor Replace(Tensor tensor, Func<Tensor, Tensor> next)
    {
        using (tensor) return next(tensor);
    }

    /// <summary>Reads a <c>.npy</c> file; errors name the file.</summary>
    public static Tensor Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            return Read(stream, stream.Length);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    private static (ScalarType DType, bool BigEndian, bool FortranOrder, long[] Shape) ReadHeader(Stream stream)
    {
        Span<byte> prefix = stackalloc byte[10];
        if (stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false) < prefix.Length || !prefix[..6].SequenceEqual(Magic))
            throw new InvalidDataException("not a .npy array: it does not begin with \\x93NUMPY");
        var (major, minor) = (prefix[6], prefix[7]);
        int headerLength;
        switch (major)
        {
            case 1:
                headerLength = BinaryPrimitives.ReadUInt16LittleEndian(prefix[8..]);
                break;
            case 2 or 3:
                Span<byte> wide = stackalloc byte[4];
                prefix[8..].CopyTo(wide);
                ReadExactly(stream, wide[2..], "header length");
                var length = BinaryPrimitives.ReadUInt32LittleEndian(wide);
                headerLength = length <= 1 << 24 ? (int)length : throw new InvalidDataException($"npy header length {length} is implausibly large");
                break;
            default:
                throw new InvalidDataException($"unsupported .npy version {major}.{minor} (supported: 1.0, 2.0, 3.0)");
        }
        var bytes = new byte[headerLength];
        ReadExactly(stream, bytes, "header");
        // Versions 1 and 2 write the header in latin-1, version 3 in UTF-8.
        var text = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes);
        return ParseHeader(text);
    }

    private static void ReadExactly(Stream stream, Span<byte> buffer, string what)
    {
        if (stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) < buffer.Length)
            throw new InvalidDataException($"npy {what} is truncated");
    }

    private static (ScalarType, bool, bool, long[]) ParseHeader(string text)
    {
        if (PyLiteral.Parse(text) is not Dictionary<string, object> dict)
            throw new InvalidDataException($"npy header is not a dict: {text.Trim()}");
        string[] expected = ["descr", "fortran_order", "shape"];
        if (!dict.Keys.Order(StringComparer.Ordinal).SequenceEqual(expected))
            throw new InvalidDataException($"npy header must have exactly the keys {string.Join(", ", expected)}: {text.Trim()}");
        var (dtype, bigEndian) = dict["descr"] switch
        {
            string descr => ParseDescr(descr),
            _ => throw new InvalidDataException($"npy structured dtypes are not supported: {text.Trim()}"),
        };
        var fortranOrder = dict["fortran_order"] as bool? ?? throw new InvalidDataException("npy 'fortran_order' must be True or False");
        var shape = dict["shape"] is List<object> dims && dims.All(d => d is long n && n >= 0)
            ? dims.Cast<long>().ToArray()
            : throw new InvalidDataException($"npy 'shape' must be a tuple of non-negative integers: {text.Trim()}");
        if (TensorBytes.ByteLength(dtype, shape) is null)
            throw new InvalidDataException($"npy shape ({string.Join(", ", shape)}) overflows");
        return (dtype, bigEndian, fortranOrder, shape);
    }

    private static (ScalarType, bool BigEndian) ParseDescr(string descr)
    {
        if (descr == "O" || (descr.Length >= 2 && descr[1] == 'O'))
            throw new InvalidDataException($"npy object arrays ('{descr}') are not supported: reading them would mean running pickle");
        var order = descr.Length > 0 ? descr[0] : ' ';
        var kind = descr.Length > 1 ? descr[1..] : "";
        var index = Array.FindIndex(DTypes, d => d.Kind == kind);
        if (order is not ('<' or '>' or '|' or '=') || index < 0)
            throw new InvalidDataException(
                $"npy dtype '{descr}' is not supported (supported: {string.Join(" ", DTypes.Select(d => d.Kind))}, in either byte order)");
        // '=' is the writer's native order; every platform .NET and libtorch share here is little-endian.
        return (DTypes[index].Type, order == '>' && DTypes[index].Type.ElementSize() > 1);
    }

    /// <summary>
    /// The subset of Python literals NumPy writes in headers: dicts, tuples, lists, strings,
    /// integers (with Python 2's optional L suffix), True, False and None.
    /// </summary>
    private ref struct PyLiteral
    {
        private readonly string _text;
        private int _pos;

        private PyLiteral(string text) => _text = text;

        public static object? Parse(string text)
        {
            var parser = new PyLiteral(text);
            var value = parser.Value();
            parser.SkipSpace();
            return parser._pos == text.Length ? value : throw parser.Error("unexpected text after the literal");
        }

        private object? Value()
        {
            SkipSpace();
            if (_pos >= _text.Length) throw Error("unexpected end");
            return _text[_pos] switch
            {
                '{' => Dict(),
                '(' => Sequence(')'),
                '[' => Sequence(']'),
                '\'' or '"' => String(),
                '-' or (>= '0' and <= '9') => Integer(),
                _ => Word(),
            };
        }

        private Dictionary<string, object> Dict()
        {
            var dict = new Dictionary<string, object>(StringComparer.Ordinal);
            _pos++;
            while (!TryClose('}'))
            {
                SkipSpace();
                var keyAt = _pos;
                if (Value() is not string key) throw Error("dict keys must be strings", keyAt);
                Expect(':');
                if (!dict.TryAdd(key, Value()!)) throw Error($"key '{key}' appears twice", keyAt);
                if (!TryClose('}')) Expect(',');
                else break;
            }
            return dict;
        }

        private List<object> Sequence(char close)
        {
            var items = new List<object>();
            _pos++;
            while (!TryClose(close))
            {
                items.Add(Value()!);
                if (TryClose(close)) break;
                Expect(',');
            }
            return items;
        }

        private string String()
        {
            var quote = _text[_pos++];
            var sb = new StringBuilder();
            while (_pos < _text.Length && _text[_pos] != quote)
            {
                var c = _text[_pos++];
                if (c == '\\')
                {
                    if (_pos >= _text.Length) break;
                    c = _text[_pos++];
                }
                sb.Append(c);
            }
            if (_pos >= _text.Length) throw Error("unterminated string");
            _pos++;
            return sb.ToString();
        }

        private long Integer()
        {
            var start = _pos;
            if (_text[_pos] == '-') _pos++;
            while (_pos < _text.Length && char.IsAsciiDigit(_text[_pos])) _pos++;
            if (!long.TryParse(_text.AsSpan(start, _pos - start), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
                throw Error("bad integer", start);
            if (_pos < _text.Length && _text[_pos] == 'L') _pos++;
            return value;
        }

        private object? Word()
        {
            var start = _pos;
            while (_pos < _text.Length && char.IsAsciiLetter(_text[_pos])) _pos++;
            return _text[start.._pos] switch
            {
                "True" => true,
                "False" => false,
                "None" => null,
                _ => throw Error("unexpected token", start),
            };
        }

        private bool TryClose(char close)
        {
            SkipSpace();
            if (_pos >= _text.Length || _text[_pos] != close) return false;
            _pos++;
            return true;
        }

        private void Expect(char c)
        {
            SkipSpace();
            if (_pos >= _text.Length || _text[_pos] != c) throw Error($"expected '{c}'");
            _pos++;
        }

        private void SkipSpace()
        {
            while (_pos < _text.Length && char.IsWhiteSpace(_text[_pos])) _pos++;
        }

        private readonly InvalidDataException Error(string message, int? at = null) =>
            new($"npy header is not a valid literal ({message} at offset {at ?? _pos}): {_text.Trim()}");
    }
}
