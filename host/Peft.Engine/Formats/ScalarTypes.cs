using static TorchSharp.torch;

namespace Peft.Engine.Formats;

public static class ScalarTypes
{
    /// <summary>PyTorch's name of a dtype ("float32", "bfloat16", "int64", ...), for messages.</summary>
    public static string Name(this ScalarType type) => type switch
    {
        ScalarType.Byte => "uint8",
        ScalarType.Bool => "bool",
        _ => type.ToString().ToLowerInvariant(),
    };
}
