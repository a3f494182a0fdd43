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
        var bytes = ReadImageFile(path, _decoder.Limits.MaxFileBytes);
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

    /// <summary>
    /// The bytes of an image file, read only when it is a regular file (through links) of 1 to <paramref name="maxBytes"/> bytes:
    /// a link to /dev/zero would be read without end and a FIFO would block the reader for ever, so anything whose size is
    /// not that of a regular file with data is refused before it is opened.
    /// </summary>
    /// <exception cref="BadImageException">The file is missing, not a regular file, empty, too large or unreadable.</exception>
    public static byte[] ReadImageFile(string path, long maxBytes)
    {
        try
        {
            FileSystemInfo file = new FileInfo(path);
            if (file.LinkTarget is not null) file = File.ResolveLinkTarget(path, returnFinalTarget: true) ?? file;
            if (Directory.Exists(file.FullName)) throw new BadImageException(path, "a directory, not an image file");
            if (!file.Exists)
                throw new BadImageException(path, file.FullName == Path.GetFullPath(path) ? "image file not found" : $"a link to {file.FullName}, which does not exist");
            // Devices, FIFOs and sockets have no size of their own (st_size 0), as /proc files and empty files.
            var length = ((FileInfo)file).Length;
            if (length == 0)
                throw new BadImageException(path, (file.FullName == Path.GetFullPath(path) ? "" : $"a link to {file.FullName}, ") +
                    "not a regular file with data (0 bytes: an empty file, a FIFO, a device or a socket); it was not read");
            if (length > maxBytes)
                throw new BadImageException(path, $"{length} bytes exceeds the limit of {maxBytes} bytes (Data:MaxFileBytes); it was not read");
            using var stream = new FileStream(file.FullName, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
            var bytes = new byte[length];
            var read = stream.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            if (read < length) throw new BadImageException(path, $"the file shrank while it was read ({read} of {length} bytes)");
            return bytes;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BadImageException(path, e is FileNotFoundException or DirectoryNotFoundException ? "image file not found" : e.Message, e);
        }
    }
}
