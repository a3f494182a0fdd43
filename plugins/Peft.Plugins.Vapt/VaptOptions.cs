using Peft.Configuration;

namespace Peft.Plugins.Vapt;

[HyperParameters("Method:Options")]
[Description("VAPT (Le et al., 2025): static prompts at block 0, then prompts generated from each block's input patch tokens.")]
public sealed partial record VaptOptions
{
    [Range(1, 1000), Description("Prompt tokens (N_p) per block.")]
    public int PromptTokens { get; init; } = 10;

    [Range(1, 16), Description("Side K of the one K×K kernel shared by all channels (no padding).")]
    public int KernelSize { get; init; } = 2;

    [Range(1, 4096), Description("Bottleneck width r of the shared feature projector D → r → D.")]
    public int BottleneckRank { get; init; } = 8;

    [Range(0, 0.99), Description("Dropout on the static block-0 prompts (adaptive prompts get none).")]
    public double PromptDropout { get; init; } = 0.1;

    [Range(0, 0.99), Description("Channel dropout (Dropout2d) on the convolution output; fixed at 0.1 in the official code.")]
    public double ConvDropout { get; init; } = 0.1;

    [Range(0, 0.99), Description("Dropout after the projector's ReLU.")]
    public double MlpDropout { get; init; } = 0.1;
}
