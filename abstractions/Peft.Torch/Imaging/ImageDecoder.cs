namespace Peft.Torch.Imaging;

/// <summary>The encodings <see cref="ImageDecoder"/> reads (numbered as the native shim reports them).</summary>
public enum ImageFormat
{
    Jpeg = 1,
    Png = 2,
}

/// <summary>
/// Decodes JPEG (libjpeg-turbo) and PNG (libspng) images into uint8 tensors of shape
/// [height, width, channels], the format told by the magic bytes. <c>channels</c>: 0 keeps the
/// source's (1 for gray, 3 for color), 1 converts to gray (BT.601 luma), 3 to RGB. Alpha is dropped
/// and 16-bit samples keep their high byte. Malformed data raises a <see cref="TorchException"/>
/// with the decoder's reason.
/// </summary>
public static class ImageDecoder
{
    public static unsafe Tensor Decode(ReadOnlySpan<byte> data, int channels = 3)
    {
        fixed (byte* p = data)
            return Tensor.FromHandle(Native.peft_image_decode(p, data.Length, channels));
    }

    /// <summary>Reads and decodes an image file; errors name the file.</summary>
    public static Tensor DecodeFile(string path, int channels = 3) =>
        NamingFile(path, bytes => Decode(bytes, channels));

    /// <summary>The size, the channels <c>channels = 0</c> decodes to, and the format, without decoding pixels.</summary>
    public static unsafe (int Width, int Height, int Channels, ImageFormat Format) ReadInfo(ReadOnlySpan<byte> data)
    {
        int width, height, channels, format;
        fixed (byte* p = data)
            Native.Check(Native.peft_image_info(p, data.Length, &width, &height, &channels, &format));
        return (width, height, channels, (ImageFormat)format);
    }

    public static (int Width, int Height, int Channels, ImageFormat Format) ReadInfoFile(string path) =>
        NamingFile(path, bytes => ReadInfo(bytes));

    private static T NamingFile<T>(string path, Func<byte[], T> read)
    {
        var bytes = File.ReadAllBytes(path);
        try
        {
            return read(bytes);
        }
        catch (TorchException e)
        {
            throw new TorchException($"{path}: {e.Message}", e);
        }
    }
}
