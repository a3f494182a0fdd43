using Peft.Configuration;

namespace Peft.Abstractions.Options;

/// <summary>How a dataset is laid out on disk.</summary>
public enum DataFormat
{
    /// <summary>IDX image and label files (MNIST, Fashion-MNIST).</summary>
    Idx,

    /// <summary>A VTAB-1k task folder with train800/val200/train800val200/test lists.</summary>
    Vtab,

    /// <summary>FGVC json splits (VPT's fine-grained benchmarks).</summary>
    Fgvc,

    /// <summary>train/, val/ and test/ folders of class subfolders.</summary>
    ImageFolder,
}

[HyperParameters("Data")]
[Description("The downstream task's data: where it is, which split protocol, and how batches are made.")]
public sealed partial record DataOptions
{
    [Description("Dataset format: IDX files (Fashion-MNIST), a VTAB-1k list folder, FGVC json splits, or class subfolders.")]
    public DataFormat Format { get; init; } = DataFormat.Idx;

    [Required, Description("Dataset folder.")]
    public string Root { get; init; } = "/usr/share/datasets/fashion-mnist";

    [Description("Class ids to keep in every split, relabelled 0..k-1 in this order; empty keeps every class.")]
    public List<int> Classes { get; init; } = [];

    [Range(0, 10000000), Description("Training images drawn per seed, balanced over classes, from the training split of any format; 0 keeps all.")]
    public int TrainSamples { get; init; }

    [Range(0, 10000000), Description("Validation images: drawn from the format's validation split (VTAB-1k: val200, which it then holds out; FGVC: val.json; ImageFolder: val/), else held out of the training split; 0: none (FGVC and ImageFolder: the whole validation split).")]
    public int ValSamples { get; init; }

    [Range(0, 64), Description("Decoding and augmentation worker threads; 0: decode on the training thread.")]
    public int Workers { get; init; } = 2;

    [Range(1, 64), Description("Batches prepared ahead of the training step.")]
    public int Prefetch { get; init; } = 4;

    [Description("Random crop and horizontal flip on training images (off for the VTAB protocol).")]
    public bool Augment { get; init; }

    [Description("Skip (and count) missing or corrupt images instead of failing with the file's name.")]
    public bool SkipBadImages { get; init; }

    [Range(1, 536870912), Description("Largest image accepted, in pixels (width × height, read from the header before decoding); larger ones are bad images. 64 megapixels by default.")]
    public long MaxImagePixels { get; init; } = 64L << 20;

    [Range(1, 1099511627776), Description("Largest data file read, in bytes (256 MiB by default): an image file, or an IDX file's data once decompressed. A larger one, and anything that is not a regular file (a FIFO, a device, a link to one), is refused without being read (an image: a bad image).")]
    public long MaxFileBytes { get; init; } = 256L << 20;

    [Description("Per-channel normalisation mean, one value per Backbone:Channels; ImageNet's by default.")]
    public List<double> Mean { get; init; } = [0.485, 0.456, 0.406];

    [Description("Per-channel normalisation standard deviation (positive), one value per Backbone:Channels; ImageNet's by default.")]
    public List<double> Std { get; init; } = [0.229, 0.224, 0.225];

    partial void ValidateCustom(string path, List<ConfigIssue> issues)
    {
        // Dividing by a zero (or negative) deviation gives infinite or flipped inputs, and a run that learns nothing.
        for (var c = 0; c < Std.Count; c++)
            if (!(Std[c] > 0))
                issues.Add(ConfigIssue.Custom(ConfigPath.Combine(ConfigPath.Combine(path, nameof(Std)), c),
                    $"{ConfigPath.Combine(ConfigPath.Combine(path, nameof(Std)), c)} must be positive (found {ConfigFormat.Value(Std[c])})"));
    }
}
