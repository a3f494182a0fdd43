using System.Buffers;
using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text.Encodings.Web;
using System.Text.Json;

using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine.Formats;

/// <summary>Limits shared by the tensor file readers.</summary>
public static class TensorFiles
{
    /// <summary>
    /// 4 GiB: the largest total of tensors a file may declare unless the caller says otherwise. A ViT-L/16 in float32 takes
    /// 1.2 GB; a header declaring 40 GB is refused before anything is allocated.
    /// </summary>
    public const long DefaultMaxBytes = 4L << 30;
}

/// <summary>Where one tensor lies in a safetensors file: offsets are relative to the data after the header.</summary>
public sealed record SafeTensorInfo(string Name, ScalarType DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}

/// <summary>
/// The safetensors format: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// <c>{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, "__metadata__": {...}}</c>,
/// then the tensors' little-endian bytes, offsets relative to the end of the header.
/// </summary>
public static class SafeTensors
{
    internal const string MetadataKey = "__metadata__";
    // The reference implementation's bound on the header, against hostile length fields.
    internal const long MaxHeaderLength = 100_000_000;

    private static readonly (string Code, ScalarType Type)[] DTypes =
    [
        ("F64", ScalarType.Float64), ("F32", ScalarType.Float32), ("F16", ScalarType.Float16),
        ("BF16", ScalarType.BFloat16), ("I64", ScalarType.Int64), ("I32", ScalarType.Int32),
        ("I16", ScalarType.Int16), ("I8", ScalarType.Int8), ("U8", ScalarType.Byte), ("BOOL", ScalarType.Bool),
    ];

    internal static ScalarType? ParseDType(string code) =>
        Array.FindIndex(DTypes, d => d.Code == code) is var k and >= 0 ? DTypes[k].Type : null;

    internal static string SupportedDTypes => string.Join(" ", DTypes.Select(d => d.Code));

    private static string Code(ScalarType type) =>
        Array.Find(DTypes, d => d.Type == type).Code ?? throw new NotSupportedException($"safetensors has no code for {type.Name()}");

    /// <summary>Opens a file for reading through a memory map; only the header is parsed here.</summary>
    /// <param name="maxBytes">Largest total of the tensors' sizes that the header may declare (<see cref="TensorFiles.DefaultMaxBytes"/>).</param>
    /// <exception cref="InvalidDataException">The file is not valid safetensors, or declares more than <paramref name="maxBytes"/> (the message says why).</exception>
    public static SafeTensorsReader Open(string path, long maxBytes = TensorFiles.DefaultMaxBytes) => new(path, maxBytes);

    /// <summary>Reads every tensor of a file.</summary>
    public static Dictionary<string, Tensor> LoadAll(string path, Device? device = null, long maxBytes = TensorFiles.DefaultMaxBytes)
    {
        using var reader = Open(path, maxBytes);
        return reader.LoadAll(device);
    }

    /// <summary>
    /// Writes tensors (from any device) and optional metadata, replacing <paramref name="path"/>
    /// atomically: the file is written beside it under a temporary name, then renamed.
    /// Laid out as the reference implementation does: data sorted by descending element size, then
    /// by name (so every tensor is aligned to its element size), <c>__metadata__</c> first in the
    /// header, and the header padded with spaces to a multiple of 8 bytes.
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IDictionary<string, string>? metadata = null)
    {
        var entries = tensors
            .OrderByDescending(kv => kv.Value.dtype.ElementSize())
            .ThenBy(kv => kv.Key, StringComparer.Ordinal)
            .ToList();
        var header = Header(entries, metadata);

        var full = Path.GetFullPath(path);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> length = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                foreach (var (_, tensor) in entries) TensorBytes.Write(stream, tensor);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    private static byte[] Header(List<KeyValuePair<string, Tensor>> entries, IDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // serde_json's escaping: only quotes, backslashes and control characters.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    json.WriteString(key, value);
                json.WriteEndObject();
            }
            var seen = new HashSet<string>(StringComparer.Ordinal);
            long offset = 0;
            foreach (var (name, tensor) in entries)
            {
                if (name == MetadataKey) throw new ArgumentException($"'{MetadataKey}' is reserved and cannot name a tensor");
                if (!seen.Add(name)) throw new ArgumentException($"tensor '{name}' is given twice");
                var bytes = tensor.numel() * tensor.dtype.ElementSize();
                json.WriteStartObject(name);
                json.WriteString("dtype", Code(tensor.dtype));
                json.WriteStartArray("shape");
                foreach (var d in tensor.shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset += bytes);
                json.WriteEndArray();
                json.WriteEndObject();
            }
            json.WriteEndObject();
        }
        var padded = new byte[(buffer.WrittenCount + 7) / 8 * 8];
        buffer.WrittenSpan.CopyTo(padded);
        padded.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return padded;
    }
}

/// <summary>
/// A safetensors file opened through a read-only memory map. The header is parsed and validated on
/// open; <see cref="Load"/> copies one tensor's bytes straight from the map. Safe to read from
/// several threads; dispose to unmap.
/// </summary>
public sealed unsafe class SafeTensorsReader : IDisposable
{
    private readonly string _path;
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _start;  // the mapped file, while acquired
    private readonly byte* _data;   // first byte after the header
    private readonly Dictionary<string, SafeTensorInfo> _tensors;
    private bool _disposed;

    internal SafeTensorsReader(string path, long maxBytes)
    {
        _path = path;
        using (var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            if (probe.Length < 8) throw Error($"the file is {probe.Length} bytes, too short for the 8-byte header length");
        }
        _map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref _start);
            var start = _start + _view.PointerOffset;
            var fileLength = (long)_view.SafeMemoryMappedViewHandle.ByteLength - _view.PointerOffset;
            var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(start, 8));
            if (headerLength > (ulong)(fileLength - 8))
                throw Error($"the header length {headerLength} runs past the end of the file ({fileLength} bytes)");
            if (headerLength > SafeTensors.MaxHeaderLength)
                throw Error($"the header length {headerLength} exceeds the limit of {SafeTensors.MaxHeaderLength} bytes");
            var header = new ReadOnlySpan<byte>(start + 8, (int)headerLength);
            _data = start + 8 + (long)headerLength;
            (_tensors, Metadata) = SafeTensorsHeader.Parse(header, fileLength - 8 - (long)headerLength, Error);
            // A sparse file can declare (and "hold") terabytes without taking any disk: memory is bounded here, not by the file.
            var declared = _tensors.Values.Sum(t => t.ByteLength);
            if (declared > maxBytes)
                throw Error($"its header declares {declared} bytes of tensors, above the limit of {maxBytes} bytes; nothing was read");
            Names = [.. _tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End).Select(t => t.Name)];
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The tensor names, in the order of their data in the file.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>The <c>__metadata__</c> entries (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public SafeTensorInfo Info(string name) =>
        _tensors.TryGetValue(name, out var info) ? info : throw new KeyNotFoundException($"{_path}: no tensor named '{name}'");

    /// <summary>Copies one tensor out of the file (onto <paramref name="device"/>, the CPU by default).</summary>
    public Tensor Load(string name, Device? device = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var info = Info(name);
        return TensorBytes.Copy(_data + info.Begin, info.ByteLength, info.DType, info.Shape, device);
    }

    public Dictionary<string, Tensor> LoadAll(Device? device = null) => Names.ToDictionary(n => n, n => Load(n, device));

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_view is not null)
        {
            if (_start is not null) _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
    }

    private InvalidDataException Error(string message) => new($"safetensors file '{_path}': {message}");
}

/// <summary>Parses and validates a safetensors header against the size of the data that follows it.</summary>
internal static class SafeTensorsHeader
{
    internal static (Dictionary<string, SafeTensorInfo> Tensors, IReadOnlyDictionary<string, string> Metadata) Parse(
        ReadOnlySpan<byte> header, long dataLength, Func<string, InvalidDataException> error)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray());
        }
        catch (JsonException e)
        {
            throw error($"the header is not valid JSON: {e.Message}");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw error($"the header is a JSON {document.RootElement.ValueKind}, not an object");
            var tensors = new Dictionary<string, SafeTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seenMetadata = false;
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name == SafeTensors.MetadataKey)
                {
                    if (seenMetadata) throw error($"'{SafeTensors.MetadataKey}' appears twice");
                    seenMetadata = true;
                    ParseMetadata(property.Value, metadata, error);
                }
                else if (!tensors.TryAdd(property.Name, ParseTensor(property.Name, property.Value, dataLength, error)))
                {
                    throw error($"tensor '{property.Name}' appears twice in the header");
                }
            }
            CheckLayout(tensors.Values, dataLength, error);
            return (tensors, metadata);
        }
    }

    private static void ParseMetadata(JsonElement value, Dictionary<string, string> metadata, Func<string, InvalidDataException> error)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw error($"'{SafeTensors.MetadataKey}' must be an object of strings, not a JSON {value.ValueKind}");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw error($"metadata '{entry.Name}' must be a string, not a JSON {entry.Value.ValueKind}");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw error($"metadata '{entry.Name}' appears twice");
        }
    }

    private static SafeTensorInfo ParseTensor(string name, JsonElement value, long dataLength, Func<string, InvalidDataException> error)
    {
        InvalidDataException Bad(string message) => error($"tensor '{name}': {message}");

        if (value.ValueKind != JsonValueKind.Object) throw Bad($"expected an object, found a JSON {value.ValueKind}");
        JsonElement Field(string field) =>
            value.TryGetProperty(field, out var v) ? v : throw Bad($"'{field}' is missing");

        var dtypeField = Field("dtype");
        var code = dtypeField.ValueKind == JsonValueKind.String ? dtypeField.GetString()! : throw Bad("'dtype' must be a string");
        var dtype = SafeTensors.ParseDType(code)
            ?? throw Bad($"unsupported dtype '{code}' (supported: {SafeTensors.SupportedDTypes})");
        var shape = Integers(Field("shape"), "shape", Bad);
        var offsets = Integers(Field("data_offsets"), "data_offsets", Bad);
        if (offsets.Length != 2) throw Bad($"'data_offsets' must hold 2 numbers, not {offsets.Length}");
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin > end) throw Bad($"data_offsets [{begin}, {end}] end before they begin");
        if (end > dataLength)
            throw Bad($"data_offsets [{begin}, {end}] run past the end of the data ({dataLength} bytes after the header)");
        var expected = TensorBytes.ByteLength(dtype, shape) ?? throw Bad($"shape [{string.Join(", ", shape)}] overflows");
        if (end - begin != expected)
            throw Bad($"data_offsets [{begin}, {end}] span {end - begin} bytes but {code} [{string.Join(", ", shape)}] needs {expected}");
        return new SafeTensorInfo(name, dtype, shape, begin, end);
    }

    private static long[] Integers(JsonElement value, string field, Func<string, InvalidDataException> bad)
    {
        if (value.ValueKind != JsonValueKind.Array) throw bad($"'{field}' must be an array of integers");
        return [.. value.EnumerateArray().Select(e =>
            e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var n) && n >= 0
                ? n
                : throw bad($"'{field}' holds {e.GetRawText()}, not a non-negative integer"))];
    }

    // As the reference reader: the tensors tile the data exactly, without gaps, overlaps or trailing bytes.
    private static void CheckLayout(IEnumerable<SafeTensorInfo> tensors, long dataLength, Func<string, InvalidDataException> error)
    {
        long position = 0;
        string? previous = null;
        foreach (var t in tensors.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin < position) throw error($"tensor '{t.Name}' overlaps tensor '{previous}' (its data begins at {t.Begin}, before {position})");
            if (t.Begin > position) throw error($"{t.Begin - position} bytes of the data before tensor '{t.Name}' belong to no tensor");
            position = t.End;
            previous = t.Name;
        }
        if (position != dataLength)
            throw error($"the tensors cover {position} bytes of data but {dataLength} follow the header");
    }
}
