using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Data;

/// <summary>Gray images and labels held in memory from an IDX pair (images N×H×W, labels N).</summary>
public sealed class IdxDataset : IImageDataset
{
    private readonly byte[] _pixels;
    private readonly byte[] _labels;
    private readonly int _height, _width;
    private readonly string _imagesPath;

    private IdxDataset(string name, string imagesPath, IdxArray images, IdxArray labels, IReadOnlyList<string> classNames)
    {
        Name = name;
        _imagesPath = imagesPath;
        _pixels = images.Data;
        _labels = labels.Data;
        _height = images.Dims[1];
        _width = images.Dims[2];
        ClassNames = classNames;
    }

    /// <summary>
    /// Reads an images file (magic 0x00000803) and a labels file (0x00000801), plain or gzip'd.
    /// Without <paramref name="classNames"/> the classes are named "0".."max label".
    /// </summary>
    /// <param name="maxBytes">Largest array read from either file (IdxArray.Read).</param>
    public static IdxDataset Load(string imagesPath, string labelsPath, IReadOnlyList<string>? classNames = null, string? name = null,
        long maxBytes = IdxArray.DefaultMaxBytes)
    {
        var images = IdxArray.Read(imagesPath, 3, maxBytes);
        var labels = IdxArray.Read(labelsPath, 1, maxBytes);
        if (images.Dims[0] != labels.Dims[0])
            throw new DatasetFormatException(labelsPath, $"{labels.Dims[0]} labels for {images.Dims[0]} images in {imagesPath}");
        var maxLabel = labels.Data.Length == 0 ? -1 : labels.Data.Max();
        classNames ??= Enumerable.Range(0, maxLabel + 1).Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (maxLabel >= classNames.Count)
        {
            var at = Array.IndexOf(labels.Data, (byte)maxLabel);
            throw new DatasetFormatException(labelsPath, $"label {maxLabel} at item {at} outside the {classNames.Count} classes");
        }
        return new IdxDataset(name ?? Path.GetFileName(imagesPath), imagesPath, images, labels, classNames);
    }

    public string Name { get; }
    public int Count => _labels.Length;
    public int ClassCount => ClassNames.Count;
    public IReadOnlyList<string> ClassNames { get; }
    public int Height => _height;
    public int Width => _width;
    public int Label(int index) => _labels[index];
    public string SourceName(int index) => $"{_imagesPath}#{index}";

    /// <summary>The pixels of sample <paramref name="index"/>, row-major.</summary>
    public ReadOnlySpan<byte> Pixels(int index) => _pixels.AsSpan(index * _height * _width, _height * _width);

    /// <summary>A new uint8 tensor [H, W, 1].</summary>
    public Tensor LoadImage(int index) => torch.tensor(Pixels(index).ToArray(), [_height, _width, 1], ScalarType.Byte);
}

/// <summary>Fashion-MNIST (Zalando), as installed by Debian's dataset-fashion-mnist.</summary>
public static class FashionMnist
{
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    public static readonly IReadOnlyList<string> ClassNames =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>The 60,000 training images (28×28 gray).</summary>
    public static IdxDataset Train(string directory = DefaultDirectory, long maxBytes = IdxArray.DefaultMaxBytes) => Load(train: true, directory, maxBytes);

    /// <summary>The 10,000 test images (28×28 gray).</summary>
    public static IdxDataset Test(string directory = DefaultDirectory, long maxBytes = IdxArray.DefaultMaxBytes) => Load(train: false, directory, maxBytes);

    private static IdxDataset Load(bool train, string directory, long maxBytes)
    {
        var prefix = train ? "train" : "t10k";
        return IdxDataset.Load(FindFile(directory, $"{prefix}-images-idx3-ubyte"), FindFile(directory, $"{prefix}-labels-idx1-ubyte"),
            ClassNames, $"fashion-mnist/{(train ? "train" : "test")}", maxBytes);
    }

    // Accept the gzip'd files (as Debian ships them) or decompressed copies.
    private static string FindFile(string directory, string stem)
    {
        var gz = Path.Combine(directory, stem + ".gz");
        var plain = Path.Combine(directory, stem);
        return File.Exists(gz) || !File.Exists(plain) ? gz : plain;
    }
}
