namespace Peft.Data;

/// <summary>
/// torchvision's ImageFolder layout: <c>root/&lt;class&gt;/**/&lt;image&gt;</c>. Classes are the subfolder names sorted
/// ordinally (label = position); files are found recursively and sorted by path.
/// </summary>
public static class ImageFolderDataset
{
    public static readonly IReadOnlyList<string> DefaultExtensions = [".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".ppm", ".pgm"];

    public static FileImageDataset Load(string root, IImageDecoder decoder, IReadOnlyList<string>? extensions = null, int channels = 3)
    {
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"{root}: ImageFolder root not found");
        extensions ??= DefaultExtensions;
        var classes = Directory.GetDirectories(root).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0) throw new DatasetFormatException(root, "no class folders");
        var files = new List<ImageFile>();
        for (var label = 0; label < classes.Length; label++)
        {
            var images = Directory.EnumerateFiles(Path.Combine(root, classes[label]), "*", SearchOption.AllDirectories)
                .Where(f => extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
                .Order(StringComparer.Ordinal).ToArray();
            if (images.Length == 0)
                throw new DatasetFormatException(Path.Combine(root, classes[label]),
                    $"class folder has no images with extensions {string.Join(' ', extensions)}");
            files.AddRange(images.Select(f => new ImageFile(f, label)));
        }
        return new FileImageDataset(Path.GetFileName(Path.TrimEndingDirectorySeparator(root)), files, classes, decoder, channels);
    }
}
