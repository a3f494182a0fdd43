using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Peft.Data;

/// <summary>
/// One step of an image pipeline on a float32 [C, H, W] tensor. Randomness comes only from
/// <paramref name="rng"/> (seeded per sample), so a step is deterministic for a given generator state.
/// Steps may return their input unchanged; they never dispose it.
/// </summary>
public interface IImageTransform
{
    Tensor Apply(Tensor image, Random rng);

    /// <summary>
    /// True when the output depends only on the input (no use of the generator): a pipeline of such steps gives every
    /// image the same tensor each epoch, so features of a frozen backbone can be computed once. Unknown steps are
    /// assumed random.
    /// </summary>
    bool IsDeterministic => false;
}

/// <summary>Bilinear resize to exactly height × width (align_corners = false).</summary>
/// <remarks>
/// The VTAB-1k protocol resizes directly to 224×224, ignoring aspect ratio (§2.1, §3). Without
/// <see cref="Antialias"/> shrinking samples like tf.image.resize (VPT's TFDS path) and F.interpolate; with it, like
/// torchvision on PIL images (PIL's triangle filter widened by the scale). Values stay float: PIL would round to uint8.
/// </remarks>
public sealed record Resize(int Height, int Width, bool Antialias = false) : IImageTransform
{
    public bool IsDeterministic => true;

    public Resize(int size, bool antialias = false) : this(size, size, antialias) { }

    public Tensor Apply(Tensor image, Random rng) => Resampling.Bilinear(image, Height, Width, Antialias);
}

/// <summary>
/// Resizes so the shorter side is <see cref="Size"/>, keeping the aspect ratio: torchvision's Resize(int), used by
/// VPT's FGVC pipeline (Resize 256, then a 224 crop). The longer side is int(Size · long / short), truncated.
/// </summary>
public sealed record ResizeShorter(int Size, bool Antialias = false) : IImageTransform
{
    public bool IsDeterministic => true;

    public static (int Height, int Width) OutputSize(int height, int width, int size) =>
        height <= width ? (size, (int)((long)size * width / height)) : ((int)((long)size * height / width), size);

    public Tensor Apply(Tensor image, Random rng)
    {
        var (h, w) = OutputSize((int)image.size(1), (int)image.size(2), Size);
        return Resampling.Bilinear(image, h, w, Antialias);
    }
}

/// <summary>The central height × width window; offsets as torchvision's CenterCrop: round((H − h) / 2) with round-half-to-even.</summary>
public sealed record CenterCrop(int Height, int Width) : IImageTransform
{
    public bool IsDeterministic => true;

    public CenterCrop(int size) : this(size, size) { }

    public static (int Top, int Left) Offsets(int height, int width, int cropHeight, int cropWidth) =>
        ((int)Math.Round((height - cropHeight) / 2.0, MidpointRounding.ToEven), (int)Math.Round((width - cropWidth) / 2.0, MidpointRounding.ToEven));

    public Tensor Apply(Tensor image, Random rng)
    {
        var (h, w) = Crop.CheckFits(image, Height, Width, nameof(CenterCrop));
        var (top, left) = Offsets(h, w, Height, Width);
        return Crop.Window(image, top, left, Height, Width);
    }
}

/// <summary>A height × width window at a uniformly random position (torchvision's RandomCrop without padding).</summary>
public sealed record RandomCrop(int Height, int Width) : IImageTransform
{
    public RandomCrop(int size) : this(size, size) { }

    public Tensor Apply(Tensor image, Random rng)
    {
        var (h, w) = Crop.CheckFits(image, Height, Width, nameof(RandomCrop));
        var top = rng.Next(h - Height + 1);
        var left = rng.Next(w - Width + 1);
        return Crop.Window(image, top, left, Height, Width);
    }
}

internal static class Crop
{
    internal static (int Height, int Width) CheckFits(Tensor image, int height, int width, string name)
    {
        var (h, w) = ((int)image.size(1), (int)image.size(2));
        if (h < height || w < width)
            throw new ArgumentException($"{name} {height}x{width} does not fit an image of {h}x{w}; resize first");
        return (h, w);
    }

    internal static Tensor Window(Tensor image, int top, int left, int height, int width)
    {
        using var rows = image.narrow(1, top, height);
        return rows.narrow(2, left, width);
    }
}

/// <summary>Mirrors left-right with probability <see cref="P"/>.</summary>
public sealed record RandomHorizontalFlip(double P = 0.5) : IImageTransform
{
    public Tensor Apply(Tensor image, Random rng) => rng.NextDouble() < P ? image.flip(2) : image;
}

/// <summary>(x − mean[c]) / std[c] per channel of a [0, 1] image.</summary>
public sealed record Normalize(IReadOnlyList<float> Mean, IReadOnlyList<float> Std) : IImageTransform
{
    public bool IsDeterministic => true;

    /// <summary>ImageNet statistics, the default for the VPT family: mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).</summary>
    public static readonly Normalize ImageNet = new([0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]);

    /// <summary>mean = std = 0.5 per channel (NOAH's input convention, §3).</summary>
    public static readonly Normalize Half = new([0.5f, 0.5f, 0.5f], [0.5f, 0.5f, 0.5f]);

    /// <summary>Leaves [0, 1] pixels as they are.</summary>
    public static readonly Normalize None = new([0f, 0f, 0f], [1f, 1f, 1f]);

    public Tensor Apply(Tensor image, Random rng)
    {
        var c = image.size(0);
        if (Mean.Count != c || Std.Count != c)
            throw new ArgumentException($"Normalize has {Mean.Count} means and {Std.Count} stds for an image of {c} channels");
        using var mean = torch.tensor(Mean.ToArray(), [c, 1, 1]);
        using var std = torch.tensor(Std.ToArray(), [c, 1, 1]);
        using var centred = image.sub(mean);
        return centred.div(std);
    }
}

/// <summary>
/// Brings the image to <see cref="Channels"/> channels: gray is replicated to 3 (the backbone's RGB), an alpha channel
/// dropped, RGB turned to gray with ITU-R 601 luma.
/// </summary>
public sealed record ToChannels(int Channels = 3) : IImageTransform
{
    public bool IsDeterministic => true;

    public Tensor Apply(Tensor image, Random rng)
    {
        var c = image.size(0);
        if (c == Channels) return image;
        if (Channels == 3 && c == 1) return image.repeat(3, 1, 1);
        if (Channels == 3 && c == 4) return image.narrow(0, 0, 3);
        if (Channels == 1 && c is 3 or 4)
        {
            using var luma = torch.tensor(new[] { 0.299f, 0.587f, 0.114f }, [3, 1, 1]);
            using var rgb = image.narrow(0, 0, 3);
            using var weighted = rgb.mul(luma);
            return weighted.sum([0L], keepdim: true);
        }
        throw new ArgumentException($"cannot convert an image of {c} channels to {Channels}");
    }
}
