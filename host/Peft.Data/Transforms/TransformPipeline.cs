using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Data;

/// <summary>
/// uint8 [H, W, C] in, float32 [C, H, W] out: converts to [0, 1] (torchvision's ToTensor), then runs the steps in
/// order. Intermediates are released when <see cref="Apply"/> returns; the result belongs to the caller's
/// dispose scope, or to the caller if none is open.
/// </summary>
public sealed class TransformPipeline(params IReadOnlyList<IImageTransform> steps)
{
    public IReadOnlyList<IImageTransform> Steps { get; } = steps;

    /// <summary>Every step is deterministic: an image maps to the same tensor in every epoch.</summary>
    public bool IsDeterministic => Steps.All(s => s.IsDeterministic);

    public Tensor Apply(Tensor image, Random rng)
    {
        if (image.dtype != ScalarType.Byte || image.dim() != 3)
            throw new ArgumentException($"expected a uint8 [H, W, C] image, got {image}", nameof(image));
        using var scope = torch.NewDisposeScope(); // owns every intermediate below
        var x = image.permute(2, 0, 1).to(ScalarType.Float32).div(255.0);
        foreach (var step in Steps) x = step.Apply(x, rng);
        // Batching stacks into a fresh tensor anyway; contiguous here keeps single-sample use cheap to read.
        return x.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// VTAB-1k training and evaluation: resize directly to size × size, normalise; no augmentation (§2.1). Not
    /// antialiased by default, as VPT's TFDS path (tf.image.resize); NOAH's processed-folder path resizes PIL images,
    /// which antialiases: pass <paramref name="antialias"/> to match it.
    /// </summary>
    public static TransformPipeline Vtab(int size = 224, Normalize? normalize = null, bool antialias = false) =>
        new(new ToChannels(3), new Resize(size, antialias), normalize ?? Normalize.ImageNet);

    /// <summary>
    /// VPT's FGVC training pipeline (src/data/transforms.py): Resize(shorter side) → RandomCrop(size) → HFlip(0.5) →
    /// normalise. Antialiased, as torchvision's Resize on PIL images is.
    /// </summary>
    public static TransformPipeline FgvcTrain(int size = 224, Normalize? normalize = null) =>
        new(new ToChannels(3), new ResizeShorter(FgvcResize(size), Antialias: true), new RandomCrop(size), new RandomHorizontalFlip(),
            normalize ?? Normalize.ImageNet);

    /// <summary>VPT's FGVC evaluation pipeline: Resize(shorter side) → CenterCrop(size) → normalise.</summary>
    public static TransformPipeline FgvcEval(int size = 224, Normalize? normalize = null) =>
        new(new ToChannels(3), new ResizeShorter(FgvcResize(size), Antialias: true), new CenterCrop(size), normalize ?? Normalize.ImageNet);

    /// <summary>The resize side VPT pairs with each crop size (src/data/transforms.py): 224→256, 384→438, 448→512, else size·8/7.</summary>
    public static int FgvcResize(int size) => size switch { 224 => 256, 384 => 438, 448 => 512, _ => size * 8 / 7 };
}
