using Peft.Abstractions.Backbone;
using Peft.Configuration;

namespace Peft.Abstractions.Options;

[HyperParameters("Backbone")]
[Description("The frozen Vision Transformer: a preset or a custom shape, and the checkpoint to load.")]
public sealed partial record BackboneOptions
{
    [AllowedValues("vit-ti16", "vit-s16", "vit-b16", "vit-l16", "custom"),
     Description("Architecture preset (timm's ViT-Ti/S/B/L with patch 16), or custom to use the fields below.")]
    public string Preset { get; init; } = "custom";

    [Range(8, 1024), Description("Input image size in pixels (square).")]
    public int ImageSize { get; init; } = 224;

    [Range(1, 64), Description("Patch size in pixels.")]
    public int PatchSize { get; init; } = 16;

    [Range(1, 4), Description("Input channels.")]
    public int Channels { get; init; } = 3;

    [Range(8, 4096), Description("Token width D (custom preset).")]
    public int Dim { get; init; } = 768;

    [Range(1, 64), Description("Number of transformer blocks (custom preset).")]
    public int Depth { get; init; } = 12;

    [Range(1, 64), Description("Attention heads; must divide Dim (custom preset).")]
    public int Heads { get; init; } = 12;

    [Range(0.25, 16), Description("MLP hidden width over Dim (custom preset).")]
    public double MlpRatio { get; init; } = 4.0;

    [Description("Checkpoint to load: .safetensors (timm keys, MAE/MoCo converted) or Google .npz; empty: random weights.")]
    public string? Checkpoint { get; init; }

    [Range(1, 1099511627776), Description("Largest checkpoint accepted, in bytes of the tensors its header declares (4 GiB by default); checked before any tensor is read.")]
    public long MaxCheckpointBytes { get; init; } = 4L << 30;

    [Description("How the checkpoint was pre-trained; decides key conversion and the read-out of some methods.")]
    public BackboneKind Kind { get; init; } = BackboneKind.Supervised;

    partial void ValidateCustom(string path, List<ConfigIssue> issues)
    {
        if (Preset == "custom" && Heads > 0 && Dim % Heads != 0)
            issues.Add(ConfigIssue.Custom(ConfigPath.Combine(path, nameof(Heads)),
                $"{ConfigPath.Combine(path, nameof(Heads))} must divide {ConfigPath.Combine(path, nameof(Dim))} (found {Heads} heads for {Dim})"));
        if (PatchSize > 0 && ImageSize % PatchSize != 0)
            issues.Add(ConfigIssue.Custom(ConfigPath.Combine(path, nameof(PatchSize)),
                $"{ConfigPath.Combine(path, nameof(PatchSize))} must divide {ConfigPath.Combine(path, nameof(ImageSize))} (found {PatchSize} for {ImageSize})"));
    }
}
