using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Data;

/// <summary>
/// Turns encoded image bytes into a uint8 tensor of shape [H, W, C]. <see cref="SkiaImageDecoder"/> reads JPEG, PNG,
/// WebP, BMP and GIF; <see cref="NetpbmDecoder"/> reads binary PGM/PPM. The loader calls one decoder from several worker threads at once, so implementations
/// must be thread-safe (stateless ones are).
/// </summary>
public interface IImageDecoder
{
    /// <param name="bytes">The encoded file.</param>
    /// <param name="sourceName">The file the bytes came from, for error messages.</param>
    /// <param name="channels">1 (gray) or 3 (RGB) to convert to, or 0 to keep the stored channels.</param>
    /// <exception cref="InvalidDataException">The bytes are not a valid image (the message names <paramref name="sourceName"/>).</exception>
    Tensor Decode(ReadOnlySpan<byte> bytes, string sourceName, int channels);
}
