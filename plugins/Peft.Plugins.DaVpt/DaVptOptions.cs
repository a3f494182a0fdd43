using Peft.Configuration;

namespace Peft.Plugins.DaVpt;

/// <summary>What the positive term of the Proxy-Anchor loss is averaged over.</summary>
public enum PositiveNormaliser
{
    /// <summary>The proxies that have a positive in the batch, |P⁺| (the paper; Proxy-Anchor's definition).</summary>
    ProxiesWithPositives,

    /// <summary>All M proxies (the released code).</summary>
    AllProxies,
}

/// <summary>The token term's anchor of a sample.</summary>
public enum TokenAnchor
{
    /// <summary>The attention output (heads concatenated, before the projection) at the sample's mapped prompt: the paper's Eq. 6.</summary>
    Attention,

    /// <summary>The mean of the block-input patch tokens: what the released code computes.</summary>
    MeanPatch,
}

[HyperParameters("Method:Options")]
[Description("DA-VPT (Ren et al., CVPR 2025): deep prompts whose guided layers double as class-cluster proxies, trained with Proxy-Anchor losses.")]
public sealed partial record DaVptOptions
{
    [Description("0-based guided blocks; empty: the last block.")]
    public List<int> GuidedLayers { get; init; } = [];

    [Range(1, 1000), Description("Prompts (proxies) M in each guided block; C ≤ M gives one prompt per class.")]
    public int GuidedPrompts { get; init; } = 10;

    [Range(0, 1000), Description("Prompts M_o in every other block.")]
    public int OtherPrompts { get; init; } = 20;

    [Range(0, 1000), Description("Proxy-Anchor scale α.")]
    public double Alpha { get; init; } = 32;

    [Range(0, 1), Description("Proxy-Anchor margin δ.")]
    public double Delta { get; init; } = 0.1;

    [Range(0.001, 1000), Description("Proxy scale ρ: proxies are ρ·P/‖P‖.")]
    public double Rho { get; init; } = 1;

    [Range(0, 100), Description("Weight β of the token–prompt term.")]
    public double Beta { get; init; } = 0.05;

    [Range(0, 100), Description("Weight λ of the CLS–prompt term.")]
    public double Lambda { get; init; } = 0.05;

    [Description("Token anchor: the attention output at the sample's prompt (paper), or the mean block-input patch token (released code).")]
    public TokenAnchor TokenAnchor { get; init; } = TokenAnchor.Attention;

    [Description("What the positive term is averaged over: proxieswithpositives (|P⁺|, the paper) or allproxies (M, the released code).")]
    public PositiveNormaliser PositiveNormaliser { get; init; } = PositiveNormaliser.ProxiesWithPositives;

    [Range(1, 10000), Description("Images per class whose features seed the first clustering.")]
    public int ClassMeanSamples { get; init; } = 10;

    [Range(1, 1000), Description("Cosine k-means iterations at most.")]
    public int KMeansIterations { get; init; } = 20;

    [Description("DA-VPT+ only: also tune the released configs' wider set (attention projection, fc2 and norm2 biases, norm1, the patch embedding bias), beyond b_K, b_V and the CLS token.")]
    public bool WiderBiases { get; init; }

    [Range(0, 0.99), Description("Dropout on the prompts at every insertion (0 in the released configs).")]
    public double PromptDropout { get; init; }
}
