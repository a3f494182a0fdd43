using Peft.Configuration;

namespace Peft.Plugins.Gated;

/// <summary>What the head reads.</summary>
public enum GatedReadout
{
    /// <summary>By the backbone's kind: mean for MAE, CLS otherwise (the official code's choice).</summary>
    Auto,

    /// <summary>The CLS token after the final norm.</summary>
    Cls,

    /// <summary>The mean of every non-CLS token (prompts included), then the final norm.</summary>
    Mean,
}

[HyperParameters("Method:Options")]
[Description("Gated Prompt Tuning (Yoo et al., ICML 2023): shallow prompts whose update by each block is gated, and a learnable attention temperature per block.")]
public sealed partial record GatedOptions
{
    [Range(1, 1000), Description("Prompt tokens (p), inserted once at the input.")]
    public int PromptTokens { get; init; } = 10;

    [Range(0, 100), Description("Gate logits start at -GateInit (5: gates ≈ 0.0067, almost closed).")]
    public double GateInit { get; init; } = 5;

    [Range(0, 0.99), Description("Dropout on the prompts at insertion.")]
    public double PromptDropout { get; init; } = 0.1;

    [Range(1e-6, 1e6), Description("Lower bound the temperatures are projected to after every step.")]
    public double TemperatureMin { get; init; } = 0.01;

    [Range(1e-6, 1e6), Description("Upper bound the temperatures are projected to after every step.")]
    public double TemperatureMax { get; init; } = 10;

    [Description("Read-out: cls = final norm then CLS (MoCo, supervised); mean = mean of every non-CLS token, prompts included, then the final norm (MAE); auto picks by Backbone:Kind.")]
    public GatedReadout Readout { get; init; } = GatedReadout.Auto;

    partial void ValidateCustom(string path, List<ConfigIssue> issues)
    {
        if (TemperatureMin > TemperatureMax)
            issues.Add(ConfigIssue.Custom(ConfigPath.Combine(path, nameof(TemperatureMin)),
                $"{ConfigPath.Combine(path, nameof(TemperatureMin))} must not exceed {ConfigPath.Combine(path, nameof(TemperatureMax))} (found {TemperatureMin} > {TemperatureMax})"));
    }
}
