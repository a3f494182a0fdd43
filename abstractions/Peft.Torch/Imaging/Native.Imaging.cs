using System.Runtime.InteropServices;

namespace Peft.Torch;

// P/Invoke surface of native/src/image.cpp.
internal static unsafe partial class Native
{
    [LibraryImport(Library)] internal static partial nint peft_image_decode(byte* data, long length, int channels);
    [LibraryImport(Library)]
    internal static partial int peft_image_info(byte* data, long length, int* width, int* height, int* channels, int* format);
}
