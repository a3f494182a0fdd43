using Peft.Configuration;

namespace MyMethod;

/// <summary>
/// The method's hyperparameters, bound from Method:Options. The source generator in Peft.Abstractions writes their
/// binding, validation (every problem at once, with its configuration path), JSON schema and description table.
/// </summary>
[HyperParameters("Method:Options")]
[Description("MyMethod: learnable prompt tokens inserted after CLS, and a linear head.")]
public sealed partial record MyMethodOptions
{
    [Range(1, 1000), Description("Prompt tokens (p), inserted once after the CLS token.")]
    public int PromptTokens { get; init; } = 10;

    [Range(0, 0.99), Description("Dropout on the prompts at insertion (training only).")]
    public double PromptDropout { get; init; } = 0.0;
}
