using Peft.Configuration;

namespace Peft.Abstractions.Options;

/// <summary>The numeric type the frozen backbone computes in; trainables, optimizer state and losses are always fp32.</summary>
public enum Precision
{
    Fp32,

    /// <summary>bfloat16: fp32's range with 8 bits of mantissa; no loss scaling needed.</summary>
    Bf16,

    /// <summary>float16: 5 bits of exponent, so gradients are kept in range by dynamic loss scaling.</summary>
    Fp16,
}

[HyperParameters("Run")]
[Description("Where a run writes, its seed and the engine's threads.")]
public sealed partial record RunOptions
{
    [Required, Description("Folder under which each run gets its own directory.")]
    public string OutputDir { get; init; } = "runs";

    [Description("Name of this run's directory; empty: the method id and the content hash of the configuration.")]
    public string? Name { get; init; }

    [Range(0, 2147483647), Description("Seed of every random choice: initialisation, shuffling, augmentation, dropout.")]
    public int Seed { get; init; } = 42;

    [Range(0, 1024), Description("libtorch threads; 0 uses every core.")]
    public int Threads { get; init; }

    [Description("Device of every tensor of a run: cpu, cuda (the first CUDA device), cuda:N, or auto (the first CUDA device if there is one, else the CPU).")]
    public string Device { get; init; } = "cpu";

    [Description("Numeric type of the frozen backbone's weights and activations: fp32, bf16 or fp16 (with dynamic loss scaling). Trainable tensors, their gradients, the optimizer state and the loss stay fp32.")]
    public Precision Precision { get; init; } = Precision.Fp32;

    [Description("Resume from the run directory's checkpoint when one exists (its run must have the same settings); false: start the run over, discarding what the directory holds.")]
    public bool Resume { get; init; } = true;

    /// <summary>cpu, auto, cuda or cuda:N.</summary>
    public static bool IsDeviceName(string device) =>
        device is "cpu" or "auto" or "cuda" || (device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(device.AsSpan(5),
            System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _));

    /// <summary>
    /// Run:OutputDir/Run:Name; null when the name is absolute or climbs out of the output folder (../x), which would
    /// write, resume or report a directory that is not one of its runs.
    /// </summary>
    public string? NamedRunDirectory(string name)
    {
        if (Path.IsPathRooted(name)) return null;
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(OutputDir));
        var run = Path.TrimEndingDirectorySeparator(Path.GetFullPath(Path.Combine(root, name)));
        return run.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal) ? run : null;
    }

    partial void ValidateCustom(string path, List<ConfigIssue> issues)
    {
        if (Name is { Length: > 0 } name && NamedRunDirectory(name) is null)
            issues.Add(ConfigIssue.Custom(ConfigPath.Combine(path, nameof(Name)),
                $"{ConfigPath.Combine(path, nameof(Name))} must name a folder inside Run:OutputDir (found '{name}'): no absolute path, no '..' out of it", name));
        if (!IsDeviceName(Device))
            issues.Add(ConfigIssue.Custom(ConfigPath.Combine(path, nameof(Device)),
                $"{ConfigPath.Combine(path, nameof(Device))} must be cpu, cuda, cuda:N or auto (found '{Device}')", Device));
    }
}
