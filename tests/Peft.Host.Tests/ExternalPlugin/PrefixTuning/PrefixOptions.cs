using Peft.Configuration;

namespace PrefixTuning;

[HyperParameters("Method:Options")]
[Description("Prefix tuning (Li & Liang, 2021) on a ViT: learned keys and values put before every block's own; the queries are unchanged.")]
public sealed partial record PrefixOptions
{
    [Range(1, 1000), Description("Learned key/value pairs per block (p).")]
    public int PrefixTokens { get; init; } = 10;

    [Range(0.0, 10.0), Description("The prefixes start uniform in ±InitScale·v, v being VPT's prompt bound.")]
    public double InitScale { get; init; } = 1.0;
}
