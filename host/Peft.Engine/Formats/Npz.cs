using System.IO.Compression;

using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine.Formats;

/// <summary>NumPy's <c>.npz</c>: a zip (stored or deflated) of <c>.npy</c> arrays, as np.savez and np.savez_compressed write.</summary>
public static partial class Npz
{
    /// <param name="maxBytes">Largest total of the arrays' sizes that the archive's directory declares (<see cref="TensorFiles.DefaultMaxBytes"/>).</param>
    /// <exception cref="InvalidDataException">The file is not a zip archive, or declares more than <paramref name="maxBytes"/>.</exception>
    public static NpzArchive Open(string path, long maxBytes = TensorFiles.DefaultMaxBytes) => new(path, maxBytes);

    /// <summary>Reads every array of a file.</summary>
    public static Dictionary<string, Tensor> LoadAll(string path, long maxBytes = TensorFiles.DefaultMaxBytes)
    {
        using var archive = Open(path, maxBytes);
        return archive.LoadAll();
    }
}

/// <summary>
/// An open <c>.npz</c> file. Arrays are named as NumPy names them: the member name without its
/// <c>.npy</c> suffix. Not thread-safe (one zip reader underneath).
/// </summary>
public sealed class NpzArchive : IDisposable
{
    private readonly string _path;
    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _entries = new(StringComparer.Ordinal);

    internal NpzArchive(string path, long maxBytes)
    {
        _path = path;
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        try
        {
            _zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
        }
        catch (InvalidDataException e)
        {
            stream.Dispose();
            throw new InvalidDataException($"{path}: not an npz (zip) archive: {e.Message}", e);
        }
        foreach (var entry in _zip.Entries.Where(e => e.FullName.EndsWith(".npy", StringComparison.Ordinal)))
            _entries.TryAdd(entry.FullName[..^4], entry);
        Names = [.. _entries.Keys];
        var declared = _entries.Values.Sum(e => e.Length);
        if (declared > maxBytes)
        {
            _zip.Dispose();
            throw new InvalidDataException($"{path}: its arrays declare {declared} bytes, above the limit of {maxBytes} bytes; nothing was read");
        }
    }

    /// <summary>The array names, in archive order.</summary>
    public IReadOnlyList<string> Names { get; }

    public bool Contains(string name) => _entries.ContainsKey(name);

    /// <exception cref="InvalidDataException">The member is corrupt or not a supported array; the message names file and array.</exception>
    public Tensor Load(string name)
    {
        if (!_entries.TryGetValue(name, out var entry))
            throw new KeyNotFoundException($"{_path}: no array named '{name}' (arrays: {string.Join(", ", Names)})");
        try
        {
            using var stream = entry.Open();
            // The member's uncompressed size bounds its array: a header declaring more is refused before allocating.
            return Npy.Read(stream, entry.Length);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{_path}: array '{name}': {e.Message}", e);
        }
    }

    public Dictionary<string, Tensor> LoadAll() => Names.ToDictionary(n => n, Load);

    public void Dispose() => _zip.Dispose();
}
