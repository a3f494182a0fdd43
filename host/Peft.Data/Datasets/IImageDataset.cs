using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Data;

/// <summary>
/// An indexed image classification dataset: sample <c>i</c> is an image and a 0-based label.
/// Implementations must be safe to read from several threads at once (the loader's workers do).
/// </summary>
public interface IImageDataset
{
    /// <summary>A short name for messages (a folder, a file pair).</summary>
    string Name { get; }

    int Count { get; }

    /// <summary>Number of classes; labels lie in [0, ClassCount).</summary>
    int ClassCount { get; }

    /// <summary>One name per class, indexed by label.</summary>
    IReadOnlyList<string> ClassNames { get; }

    int Label(int index);

    /// <summary>Where sample <paramref name="index"/> comes from (a file path, "file#index"), for error messages.</summary>
    string SourceName(int index);

    /// <summary>
    /// Sample <paramref name="index"/> as a new uint8 tensor of shape [H, W, C]; the caller owns it.
    /// A missing or undecodable image raises <see cref="BadImageException"/>.
    /// </summary>
    Tensor LoadImage(int index);
}

/// <summary>A sample whose image is missing or cannot be decoded; <see cref="SourceName"/> names the file.</summary>
public sealed class BadImageException(string source, string message, Exception? inner = null)
    : Exception($"{source}: {message}", inner)
{
    public string SourceName { get; } = source;
}

/// <summary>A malformed dataset description (list file, json split, IDX header); names the file and, where known, the line.</summary>
public sealed class DatasetFormatException(string file, string message, int? line = null)
    : Exception(line is { } l ? $"{file}:{l}: {message}" : $"{file}: {message}")
{
    public string File { get; } = file;
    public int? Line { get; } = line;
}
