namespace Peft.Data;

public enum VtabGroup { Natural, Specialized, Structured }

/// <summary>A VTAB-1k task: the exporter's folder name, the names other codebases use for it, its classes and group.</summary>
public sealed record VtabTask(string Name, int ClassCount, VtabGroup Group, params string[] Aliases);

/// <summary>The 19 VTAB-1k tasks in the NOAH exporter's folder layout (benchmarks reference §4.1).</summary>
public static class VtabCatalog
{
    public static readonly IReadOnlyList<VtabTask> Tasks =
    [
        new("cifar", 100, VtabGroup.Natural, "cifar100", "cifar(num_classes=100)"),
        new("caltech101", 102, VtabGroup.Natural),
        new("dtd", 47, VtabGroup.Natural),
        new("oxford_flowers102", 102, VtabGroup.Natural, "flowers102"),
        new("oxford_iiit_pet", 37, VtabGroup.Natural, "oxford_pet", "pets"),
        new("svhn", 10, VtabGroup.Natural),
        new("sun397", 397, VtabGroup.Natural),
        new("patch_camelyon", 2, VtabGroup.Specialized, "camelyon"),
        new("eurosat", 10, VtabGroup.Specialized),
        new("resisc45", 45, VtabGroup.Specialized),
        new("diabetic_retinopathy", 5, VtabGroup.Specialized, "retinopathy"),
        new("clevr_count", 8, VtabGroup.Structured, "clevr(task=\"count_all\")"),
        new("clevr_dist", 6, VtabGroup.Structured, "clevr(task=\"closest_object_distance\")"),
        new("dmlab", 6, VtabGroup.Structured),
        new("kitti", 4, VtabGroup.Structured, "kitti(task=\"closest_vehicle_distance\")"),
        new("dsprites_loc", 16, VtabGroup.Structured, "dsprites(predicted_attribute=\"label_x_position\",num_classes=16)"),
        new("dsprites_ori", 16, VtabGroup.Structured, "dsprites(predicted_attribute=\"label_orientation\",num_classes=16)"),
        new("smallnorb_azi", 18, VtabGroup.Structured, "smallnorb(predicted_attribute=\"label_azimuth\")"),
        new("smallnorb_ele", 9, VtabGroup.Structured, "smallnorb(predicted_attribute=\"label_elevation\")"),
    ];

    /// <summary>The task named <paramref name="name"/> or one of its aliases (case-insensitive), or null.</summary>
    public static VtabTask? Find(string name) =>
        Tasks.FirstOrDefault(t => t.Name.Equals(name, StringComparison.OrdinalIgnoreCase) ||
                                  t.Aliases.Any(a => a.Equals(name, StringComparison.OrdinalIgnoreCase)));

    /// <summary>The task's canonical name, or an error listing the known names.</summary>
    public static VtabTask Get(string name) => Find(name) ?? throw new ArgumentException(
        $"unknown VTAB-1k task '{name}'; known: {string.Join(", ", Tasks.Select(t => t.Name))}", nameof(name));
}

public enum VtabSplit { Train800, Val200, Train800Val200, Test }

/// <summary>
/// Reads VTAB-1k "processed" folders: <c>&lt;root&gt;/&lt;task&gt;/{train800,val200,train800val200,test}.txt</c>,
/// each line <c>images/&lt;split&gt;/000000.jpg &lt;0-based label&gt;</c> relative to the task folder (§4.1).
/// </summary>
public static class VtabDataset
{
    public static string FileName(VtabSplit split) => split switch
    {
        VtabSplit.Train800 => "train800.txt",
        VtabSplit.Val200 => "val200.txt",
        VtabSplit.Train800Val200 => "train800val200.txt",
        VtabSplit.Test => "test.txt",
        _ => throw new ArgumentOutOfRangeException(nameof(split), split, null),
    };

    /// <summary>
    /// The folder of <paramref name="task"/> under <paramref name="root"/>: the canonical name or the first
    /// alias that exists as a folder (so a root laid out with "cifar100" or "oxford_pet" works too).
    /// </summary>
    public static string FindTaskDirectory(string root, string task)
    {
        var known = VtabCatalog.Get(task);
        var candidates = new[] { known.Name }.Concat(known.Aliases).Prepend(task).Distinct().ToArray();
        foreach (var c in candidates)
        {
            var dir = Path.Combine(root, c);
            if (Directory.Exists(dir)) return dir;
        }
        throw new DirectoryNotFoundException($"{root}: no folder for VTAB-1k task '{task}' (tried {string.Join(", ", candidates)})");
    }

    /// <summary>Loads a split of the task named <paramref name="task"/> (or an alias) under <paramref name="root"/>.</summary>
    public static FileImageDataset Load(string root, string task, VtabSplit split, IImageDecoder decoder, int channels = 3) =>
        LoadFolder(FindTaskDirectory(root, task), split, decoder, channels, VtabCatalog.Get(task));

    /// <summary>
    /// Loads a split from a task folder. With a known <paramref name="task"/> labels are checked against its
    /// class count; otherwise the classes are 0..max label over the four split files present.
    /// </summary>
    public static FileImageDataset LoadFolder(string taskDirectory, VtabSplit split, IImageDecoder decoder, int channels = 3,
        VtabTask? task = null)
    {
        task ??= VtabCatalog.Find(Path.GetFileName(Path.TrimEndingDirectorySeparator(taskDirectory)));
        var listPath = Path.Combine(taskDirectory, FileName(split));
        var entries = ListFile.Read(listPath);
        var classCount = task?.ClassCount ?? InferClassCount(taskDirectory);
        foreach (var e in entries)
            if (e.Label >= classCount)
                throw new DatasetFormatException(listPath, $"label {e.Label} outside the {classCount} classes of {task?.Name ?? "this task"}", e.Line);
        var files = entries.Select(e => new ImageFile(Path.Combine(taskDirectory, e.RelativePath), e.Label)).ToArray();
        var names = Enumerable.Range(0, classCount).Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        return new FileImageDataset($"{task?.Name ?? Path.GetFileName(taskDirectory)}/{FileName(split)}", files, names, decoder, channels);
    }

    private static int InferClassCount(string taskDirectory) =>
        Enum.GetValues<VtabSplit>().Select(s => Path.Combine(taskDirectory, FileName(s))).Where(File.Exists)
            .SelectMany(ListFile.Read).Select(e => e.Label).DefaultIfEmpty(-1).Max() + 1;
}
