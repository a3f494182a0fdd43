using Peft.Configuration;

namespace Peft.Plugins.Vpt;

/// <summary>Where VPT's prompts enter (VPT §3.2).</summary>
public enum VptMode
{
    /// <summary>One prompt set at the input of the first block.</summary>
    Shallow,

    /// <summary>A new prompt set before every block, replacing the previous block's prompt outputs.</summary>
    Deep,
}

[HyperParameters("Method:Options")]
[Description("Visual Prompt Tuning (Jia et al., ECCV 2022): learnable prompt tokens at the input (shallow) or before every block (deep).")]
public sealed partial record VptOptions
{
    [Description("shallow: one prompt set at the input; deep: a new set replaces the prompts before every block.")]
    public VptMode Mode { get; init; } = VptMode.Deep;

    [Range(1, 1000), Description("Prompt tokens per set (p).")]
    public int PromptTokens { get; init; } = 10;

    [Range(0, 0.99), Description("Dropout on the prompts at every insertion; empty: VPT's recipe by mode, 0 for shallow and 0.1 for deep.")]
    public double? PromptDropout { get; init; }

    [Range(-1, 65536), Description("Store prompts in this many dimensions and map them to the width with a trainable Linear; -1: off.")]
    public int Projection { get; init; } = -1;

    partial void ValidateCustom(string path, List<ConfigIssue> issues)
    {
        if (Projection == 0)
            issues.Add(ConfigIssue.Custom(ConfigPath.Combine(path, nameof(Projection)),
                $"{ConfigPath.Combine(path, nameof(Projection))} must be -1 (off) or a positive width (found 0)", "0"));
    }
}
