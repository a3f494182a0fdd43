using System.Globalization;
using System.Text.Json;

namespace Peft.Data;

/// <summary>
/// FGVC json splits in VPT's format (benchmarks reference §4.3): <c>train.json</c>, <c>val.json</c>, <c>test.json</c>
/// (or <c>train_&lt;pct&gt;.json</c>) in the dataset folder, each one object <c>{ "relative/image.jpg": classId, ... }</c>.
/// VPT maps each split's sorted distinct ids to 0..K-1 per split, which shifts labels when a split lacks a class;
/// here the map is built once from train.json and applied to every split.
/// </summary>
public static class FgvcDataset
{
    /// <summary>Image root, relative to the dataset folder, per VPT's DATA.NAME (json_dataset.py).</summary>
    public static readonly IReadOnlyDictionary<string, string> ImageRoots = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase)
    {
        ["CUB"] = "images",
        ["nabirds"] = "images",
        ["OxfordFlowers"] = "",
        ["StanfordDogs"] = "Images",
        ["StanfordCars"] = "",
    };

    /// <summary>
    /// Loads <paramref name="split"/> ("train", "val", "test", "train_0.1", ...) of the dataset in
    /// <paramref name="datasetDirectory"/>. Image keys are relative to <paramref name="imageRoot"/> (a folder
    /// under the dataset folder); by default the root VPT uses for a dataset of that folder name, else the folder itself.
    /// </summary>
    public static FileImageDataset Load(string datasetDirectory, string split, IImageDecoder decoder, string? imageRoot = null,
        int channels = 3)
    {
        var trainPath = Path.Combine(datasetDirectory, "train.json");
        var classIds = ReadSplit(trainPath).Select(e => e.ClassId).Distinct().Order().ToArray();
        var labelOf = classIds.Select((id, label) => (id, label)).ToDictionary(p => p.id, p => p.label);

        var splitPath = Path.Combine(datasetDirectory, split.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? split : split + ".json");
        imageRoot ??= ImageRoots.GetValueOrDefault(Path.GetFileName(Path.TrimEndingDirectorySeparator(datasetDirectory)), "");
        var files = new List<ImageFile>();
        foreach (var (key, classId) in ReadSplit(splitPath))
        {
            if (!labelOf.TryGetValue(classId, out var label))
                throw new DatasetFormatException(splitPath, $"\"{key}\": class {classId} does not occur in {trainPath}");
            files.Add(new ImageFile(Path.Combine(datasetDirectory, imageRoot, key), label));
        }
        var names = classIds.Select(id => id.ToString(CultureInfo.InvariantCulture)).ToArray();
        return new FileImageDataset($"{Path.GetFileName(datasetDirectory)}/{Path.GetFileName(splitPath)}", files, names, decoder, channels);
    }

    /// <summary>The (image key, class id) pairs of one json split, in file order.</summary>
    public static IReadOnlyList<(string Key, long ClassId)> ReadSplit(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: FGVC split file not found", path);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new DatasetFormatException(path, $"invalid json: {e.Message}", (int?)e.LineNumber + 1);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new DatasetFormatException(path, $"expected one object {{\"image path\": class id, ...}}, found {doc.RootElement.ValueKind}");
            var entries = new List<(string, long)>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt64(out var id))
                    throw new DatasetFormatException(path, $"\"{p.Name}\": class id must be an integer, found {p.Value.GetRawText()}");
                entries.Add((p.Name, id));
            }
            return entries;
        }
    }
}
