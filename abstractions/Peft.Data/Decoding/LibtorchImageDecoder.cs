using Peft.Torch;
using Peft.Torch.Imaging;

namespace Peft.Data;

/// <summary>JPEG (libjpeg-turbo) and PNG (libspng) through the native shim.</summary>
public sealed class LibtorchImageDecoder : IImageDecoder
{
    public static readonly LibtorchImageDecoder Instance = new();

    /// <summary>Netpbm first (P5/P6), then JPEG and PNG: every extension ImageFolder accepts.</summary>
    public static IImageDecoder AllFormats { get; } = new NetpbmDecoder(Instance);

    public Tensor Decode(ReadOnlySpan<byte> bytes, string sourceName, int channels) => ImageDecoder.Decode(bytes, channels);
}
