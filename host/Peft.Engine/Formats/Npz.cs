using System.IO.Compression;

using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Engine.Formats;

/// <summary>NumPy's <c>.npz</c>: a zip (stored or deflated) of <c>.npy</c> arrays, as np.savez and np.savez_compressed write.</summary>
public static partial class Npz
{
    /// <exception cref="InvalidDataException">The file is not a zip archive.</exception>
    public static NpzArchive Open(string path) => new(path);

    /// <summary>Reads every array of a file.</summary>
    public static Dictionary<string, Tensor> LoadAll(string path)
    {
        using var archive = Open(path);
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

    internal NpzArchive(string path)
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
            return Npy.Read(stream);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{_path}: array '{name}': {e.Message}", e);
        }
    }

    public Dictionary<string, Tensor> LoadAll() => Names.ToDictionary(n => n, Load);

    public void Dispose() => _zip.Dispose();
}
