using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Data;

/// <summary>One image file and its 0-based label.</summary>
public readonly record struct ImageFile(string Path, int Label);

/// <summary>
/// A dataset of image files decoded on demand (VTAB-1k lists, FGVC json splits, ImageFolder all produce one).
/// </summary>
public sealed class FileImageDataset : IImageDataset
{
    private readonly IReadOnlyList<ImageFile> _files;
    private readonly IImageDecoder _decoder;
    private readonly int _channels;

    /// <param name="channels">Channels to decode to: 3 (the backbone's RGB, default), 1, or 0 to keep what is stored.</param>
    public FileImageDataset(string name, IReadOnlyList<ImageFile> files, IReadOnlyList<string> classNames, IImageDecoder decoder,
        int channels = 3)
    {
        ArgumentNullException.ThrowIfNull(decoder);
        Name = name;
        _files = files;
        ClassNames = classNames;
        _decoder = decoder;
        _channels = channels;
        for (var i = 0; i < files.Count; i++)
            if ((uint)files[i].Label >= (uint)classNames.Count)
                throw new ArgumentException($"{files[i].Path}: label {files[i].Label} outside [0, {classNames.Count})", nameof(files));
    }

    public string Name { get; }
    public int Count => _files.Count;
    public int ClassCount => ClassNames.Count;
    public IReadOnlyList<string> ClassNames { get; }
    public int Label(int index) => _files[index].Label;
    public string SourceName(int index) => _files[index].Path;

    /// <summary>The file of sample <paramref name="index"/>.</summary>
    public string PathOf(int index) => _files[index].Path;

    public Tensor LoadImage(int index)
    {
        var path = _files[index].Path;
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadImageException(path, e is FileNotFoundException or DirectoryNotFoundException ? "image file not found" : e.Message, e);
        }
        try
        {
            return _decoder.Decode(bytes, path, _channels);
        }
        catch (InvalidDataException e)
        {
            // Decoders name the file themselves; keep their message, drop a repeated "path: " prefix.
            var message = e.Message.StartsWith(path + ": ", StringComparison.Ordinal) ? e.Message[(path.Length + 2)..] : e.Message;
            throw new BadImageException(path, message, e);
        }
    }
}
