using Peft.Configuration;

namespace Peft.Abstractions.Options;

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

    [AllowedValues("cpu", "cuda"), Description("Device to train on.")]
    public string Device { get; init; } = "cpu";

    [Description("Resume from the run directory's checkpoint when one exists.")]
    public bool Resume { get; init; } = true;
}
