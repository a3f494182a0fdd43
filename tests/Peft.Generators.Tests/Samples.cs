using Peft.Configuration;

namespace Peft.Generators.Tests;

public enum LrSchedule
{
    Constant,
    Linear,
    Cosine,
}

[HyperParameters("Method:Options")]
[Description("Prompt tuning: trainable virtual tokens prepended to the input.")]
public sealed partial record PromptTuningOptions
{
    [Range(1, 1000)]
    [Description("Number of virtual tokens.")]
    public int PromptTokens { get; init; } = 20;

    [AllowedValues("random", "text")]
    [Description("How the virtual tokens are initialised.")]
    public string Init { get; init; } = "random";

    public string? InitText { get; init; }

    [Range(0.0, 1.0)]
    public double Dropout { get; init; } = 0.1;

    public List<string> TargetModules { get; init; } = ["q_proj", "v_proj"];

    partial void ValidateCustom(string path, List<ConfigIssue> issues)
    {
        if (Init == "text" && string.IsNullOrWhiteSpace(InitText))
        {
            var initText = ConfigPath.Combine(path, nameof(InitText));
            issues.Add(ConfigIssue.Custom(initText, $"{initText} is required when Init is 'text'"));
        }
    }
}

[HyperParameters("Method")]
public sealed partial record MethodOptions
{
    [Required]
    [AllowedValues("prompt-tuning", "lora")]
    public string? Name { get; init; }

    public PromptTuningOptions Options { get; init; } = new() { PromptTokens = 8 };
}

/// <summary>A mutable class (set accessors) with every supported scalar kind.</summary>
[HyperParameters("Trainer")]
public sealed partial class TrainerOptions
{
    [Range(1, 100)]
    public int Epochs { get; set; } = 3;

    public long MaxSteps { get; set; } = -1;

    [Range(0, 1)]
    public float LearningRate { get; set; } = 1e-4f;

    public decimal WeightDecay { get; set; } = 0.01m;

    public bool Shuffle { get; set; } = true;

    public byte Workers { get; set; } = 2;

    public sbyte Priority { get; set; }

    public short LogEvery { get; set; } = 10;

    public ushort SavesKept { get; set; } = 3;

    public uint EvalBatch { get; set; } = 8;

    public ulong MaxTokens { get; set; } = 1_000_000;

    public char Separator { get; set; } = ',';

    [Description("Learning rate schedule.")]
    public LrSchedule Schedule { get; set; } = LrSchedule.Linear;

    public LrSchedule? WarmupSchedule { get; set; }

    public int? Seed { get; set; } = 42;

    [Range(1, 64)]
    public int? GradientAccumulation { get; set; }

    public int[] EvalSteps { get; set; } = [];

    public IReadOnlyList<double> Betas { get; set; } = [0.9, 0.999];

    public List<StageOptions> Stages { get; set; } = [];
}

[HyperParameters]
public sealed partial record StageOptions
{
    [Required]
    public string? Name { get; init; }

    [Range(1, 100)]
    public int Epochs { get; init; } = 1;
}
