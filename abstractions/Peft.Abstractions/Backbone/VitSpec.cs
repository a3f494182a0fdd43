using Peft.Abstractions.Options;

namespace Peft.Abstractions.Backbone;

/// <summary>How the backbone was pre-trained: decides checkpoint conversion and some methods' read-out.</summary>
public enum BackboneKind
{
    Supervised,
    Mae,
    Moco,
}

/// <summary>The shape of a ViT: what methods size their prompts, gates and heads from.</summary>
public sealed record VitSpec(int ImageSize, int PatchSize, int Channels, int Dim, int Depth, int Heads, double MlpRatio = 4.0,
    double LayerNormEps = 1e-6)
{
    public int Grid => ImageSize / PatchSize;
    public int NumPatches => Grid * Grid;
    public int HeadDim => Dim / Heads;
    public int MlpHidden => (int)Math.Round(Dim * MlpRatio);

    /// <summary>timm's ViT presets with patch 16 (vit_tiny/small/base/large_patch16).</summary>
    public static VitSpec Preset(string name, int imageSize = 224, int channels = 3) => name switch
    {
        "vit-ti16" => new(imageSize, 16, channels, 192, 12, 3),
        "vit-s16" => new(imageSize, 16, channels, 384, 12, 6),
        "vit-b16" => new(imageSize, 16, channels, 768, 12, 12),
        "vit-l16" => new(imageSize, 16, channels, 1024, 24, 16),
        _ => throw new ArgumentException($"unknown ViT preset '{name}' (vit-ti16, vit-s16, vit-b16, vit-l16)", nameof(name)),
    };

    public static VitSpec From(BackboneOptions o) => o.Preset == "custom"
        ? new(o.ImageSize, o.PatchSize, o.Channels, o.Dim, o.Depth, o.Heads, o.MlpRatio)
        : Preset(o.Preset, o.ImageSize, o.Channels);

    public override string ToString() =>
        $"ViT {ImageSize}px/{PatchSize}, D={Dim}, depth {Depth}, {Heads} heads, MLP {MlpHidden}";
}
